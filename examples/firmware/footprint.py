#!/usr/bin/env python3
"""Footprint report of the otaup test firmware (examples/firmware/build.sh).

Reads, for each linked configuration, the link map (what survived
--gc-sections, per object), `nm -S` (symbol sizes: the hash and CRC code,
the updater's static buffers) and the -fcallgraph-info=su files (deepest
stack from the updater's entry point), and prints one table.

    footprint.py --config NAME:MAP:ELF:ROOT:SKIP [--config ...] --ci DIR --nm NM
                 [--staging N --wbits N --max-ops N --max-frame N --max-msg N]

Grouping rules (object file names): see GROUPS below. Indirect calls are
resolved with INDIRECT: which callbacks an indirect call site in a given
function may reach (the flash driver, the link, the clock, zlib's
allocator, the executor's progress callback and per-sector visitor).
"""
import argparse
import glob
import os
import re
import subprocess
import sys

# object (basename without .o) -> group
GROUPS = [
    (r"^(exec|journal|record|geometry|apply|proto|proto_msg|image|xxh3|error|seal|crypto)$", "otaup"),
    # zlib's crc32.c (compiled as zcrc32.o) is linked only for the codec's
    # frame CRC (OTAUP_CONFIG_SMALL_CRC=0): it counts with the codec
    (r"^zcrc32$", "otaup"),
    (r"^(inflate|inftrees|inffast|zutil|adler32)$", "zlib"),
    (r"^(updater|updater_proto|board|memfuncs)$", "glue"),
]
HASH_SYM = re.compile(r"XXH")          # the xxHash library inlined (xxh3.o counts whole)
CRC_SYM = re.compile(r"crc", re.I)      # CRC functions and tables (zcrc32.o counts whole)

# Indirect call sites: (regex on the calling function, possible targets).
# First match wins; targets are function names (static ones included).
# Both firmwares install no security hooks, no flash sync, no manifest or
# notify callback: those calls reach nothing.
FLASH = ["f_read", "f_prog", "f_erase"]
INDIRECT = [
    (r"^(inflate|inflateInit2_|inflateReset|inflateReset2|updatewindow|inflateEnd)", ["z_alloc", "z_free"]),
    (r"apply\.c:link_send", ["link_send"]),
    (r"apply\.c:now", ["clock_ms"]),
    (r"otaup_apply_run", ["link_recv"]),
    (r"apply\.c:pump|otaup_sig_calc|fread_|otaup_journal_mount", ["f_read"]),
    (r"apply\.c:", FLASH),
    (r"exec\.c:erase_range", ["f_erase"]),
    (r"exec\.c:prog_skip|journal\.c:put_slot", ["f_prog"]),
    (r"journal\.c:append", ["f_prog", "f_erase"]),
    (r"exec\.c:progress", ["on_progress", "exec_progress"]),
    (r"exec\.c:(hook_head|opaque_feed|next_event|outer_feed|rec_head)|otaup_exec_finish", []),
    (r"", FLASH),
]


def group_of(path):
    base = os.path.basename(path)
    base = re.sub(r"\.o\)?$", "", base)
    for rx, g in GROUPS:
        if re.search(rx, base):
            return g
    return "app"


def parse_map(path):
    """Sizes of the kept input sections: {(group, 'code'|'ram'): bytes}, {object: code}."""
    tot, per_obj = {}, {}
    go = False
    pend = None
    out = None
    with open(path) as f:
        for line in f:
            if line.startswith("Linker script and memory map"):
                go = True
                continue
            if not go:
                continue
            m = re.match(r"^(\.[A-Za-z_][\w.]*)", line)
            if m:
                out = m.group(1)
                continue
            m = re.match(r"^ (\.[\w.]+|COMMON)\s*$", line)
            if m:
                pend = m.group(1)
                continue
            m = re.match(r"^ (\.[\w.]+|COMMON)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)", line)
            if m:
                sec, size, obj = m.group(1), int(m.group(3), 16), m.group(4)
                pend = None
            else:
                m = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+\.o\)?)\s*$", line)
                if not (m and pend):
                    pend = None
                    continue
                sec, size, obj = pend, int(m.group(2), 16), m.group(3)
                pend = None
            if size == 0 or out is None:
                continue
            if out in (".text", ".ramfunc", ".vectors"):
                kind = "code"
            elif out in (".data", ".bss"):
                kind = "ram"
            else:
                continue
            g = group_of(obj)
            tot[(g, kind)] = tot.get((g, kind), 0) + size
            if kind == "code":
                b = os.path.basename(obj)
                per_obj[b] = per_obj.get(b, 0) + size
    return tot, per_obj


def nm_symbols(nm, elf):
    syms = {}
    res = subprocess.run([nm, "-S", "--size-sort", elf], capture_output=True, text=True, check=True)
    for line in res.stdout.splitlines():
        p = line.split()
        if len(p) == 4:
            syms.setdefault(p[3], []).append((int(p[1], 16), p[2]))
    return syms


def sym_total(syms, rx, kinds="tTrR", skip=()):
    return sum(s for name, lst in syms.items() if rx.search(name) and name not in skip
               for s, k in lst if k in kinds)


def obj_names(nm, path):
    if not os.path.exists(path):
        return set()
    res = subprocess.run([nm, path], capture_output=True, text=True, check=True)
    return {ln.split()[-1] for ln in res.stdout.splitlines() if ln.strip()}


def parse_ci(files):
    """Nodes {title: (name, bytes)} and edges {title: [targets]}."""
    nodes, edges = {}, {}
    node_rx = re.compile(r'node: \{ title: "([^"]+)" label: "([^"\\]+)(?:\\n[^"]*?\\n(\d+) bytes)?')
    edge_rx = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
    for fn in files:
        with open(fn) as f:
            for line in f:
                m = node_rx.search(line)
                if m:
                    title, name, b = m.group(1), m.group(2), m.group(3)
                    if b is not None or title not in nodes:
                        nodes[title] = (name, int(b) if b is not None else None)
                    continue
                m = edge_rx.search(line)
                if m:
                    edges.setdefault(m.group(1), []).append(m.group(2))
    return nodes, edges


def max_stack(root, nodes, edges):
    """Deepest stack (bytes) from `root` along simple call paths, and the path."""
    by_name = {}
    for title, (name, b) in nodes.items():
        if b is not None:
            by_name.setdefault(name.split(".")[0], []).append(title)
            by_name.setdefault(title.split(":")[-1], []).append(title)

    def resolve(target):
        if target in nodes and nodes[target][1] is not None:
            return [target]
        short = target.split(":")[-1]
        return by_name.get(short, by_name.get(short.split(".")[0], []))

    def indirect_targets(caller):
        for rx, targets in INDIRECT:
            if re.search(rx, caller):
                out = []
                for t in targets:
                    out += resolve(t)
                return out
        return []

    unknown = set()
    memo = {}

    def walk(t, path):
        if t in path:
            return 0, []
        if t in memo and not (memo[t][2] & path):
            return memo[t][0], memo[t][1]
        own = nodes.get(t, (t, None))[1]
        if own is None:
            unknown.add(t)
            own = 0
        best, best_path, used = 0, [], set()
        for tgt in edges.get(t, []):
            cands = indirect_targets(t) if tgt == "__indirect_call" else resolve(tgt)
            if not cands and tgt != "__indirect_call":
                unknown.add(tgt)
            for c in cands:
                d, p = walk(c, path | {t})
                if d > best:
                    best, best_path = d, p
        res = (own + best, [t] + best_path)
        memo[t] = (res[0], res[1], set(res[1]))
        return res

    roots = resolve(root)
    if not roots:
        return 0, [], unknown
    best = max((walk(r, frozenset()) for r in roots), key=lambda x: x[0])
    return best[0], best[1], unknown


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", action="append", required=True)
    ap.add_argument("--ci", required=True)
    ap.add_argument("--nm", required=True)
    ap.add_argument("--staging", type=int, default=4096)
    ap.add_argument("--wbits", type=int, default=11)
    ap.add_argument("--max-ops", type=int, default=32)
    ap.add_argument("--max-frame", type=int, default=256)
    ap.add_argument("--max-msg", type=int, default=512)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()

    rows = []
    for spec in a.config:
        # SKIP: call-graph files of the other configuration (its updater)
        name, mp, elf, root, skip = spec.split(":")
        files = [f for f in glob.glob(os.path.join(a.ci, "*.ci"))
                 if os.path.basename(f) not in skip.split(",")]
        nodes, edges = parse_ci(files)
        tot, per_obj = parse_map(mp)
        syms = nm_symbols(a.nm, elf)
        bufs = {}
        for s in ("g_work", "g_exec", "g_apply", "g_journal", "g_flash"):
            if s in syms:
                bufs[s] = syms[s][0][0]
        depth, path, unknown = max_stack(root, nodes, edges)
        rows.append(dict(name=name, tot=tot, per_obj=per_obj, syms=syms, bufs=bufs, depth=depth,
                         path=path, unknown=unknown, nodes=nodes))

    w = 26
    cols = "".join("%*s" % (w, r["name"]) for r in rows)
    print()
    print("otaup footprint on a Cortex-M4 (-Os -mthumb, --gc-sections; code includes constants)")
    print("%-44s%s" % ("", cols))

    def line(label, fn):
        print("%-44s%s" % (label, "".join("%*s" % (w, fn(r)) for r in rows)))

    exec_objs = ("exec.o", "journal.o", "record.o", "geometry.o", "xxh3.o")
    proto_objs = ("apply.o", "proto.o", "proto_msg.o", "image.o", "zcrc32.o")
    line("code: applier + codec (otaup objects)", lambda r: "%d B" % r["tot"].get(("otaup", "code"), 0))
    line("  executor, journal, records, geometry, XXH3",
         lambda r: "%d B" % sum(r["per_obj"].get(o, 0) for o in exec_objs))
    line("  protocol applier, frame/message codec",
         lambda r: "%d B" % sum(r["per_obj"].get(o, 0) for o in proto_objs))
    xxh3_names = obj_names(a.nm, os.path.join(a.ci, "xxh3.o"))
    zcrc_names = obj_names(a.nm, os.path.join(a.ci, "zcrc32.o"))
    line("  of which xxHash (XXH3-64/128)",
         lambda r: "%d B" % (r["per_obj"].get("xxh3.o", 0) + sym_total(r["syms"], HASH_SYM, skip=xxh3_names)))
    line("  of which CRC-8/CRC-32",
         lambda r: "%d B" % (r["per_obj"].get("zcrc32.o", 0) + sym_total(r["syms"], CRC_SYM, skip=zcrc_names)))
    line("code: zlib raw inflate", lambda r: "%d B" % r["tot"].get(("zlib", "code"), 0))
    line("code: board, updater glue, memfuncs", lambda r: "%d B" % r["tot"].get(("glue", "code"), 0))
    line("static RAM of otaup (.data/.bss)", lambda r: "%d B" % r["tot"].get(("otaup", "ram"), 0))
    line("static RAM of zlib (.data/.bss)", lambda r: "%d B" % r["tot"].get(("zlib", "ram"), 0))
    print()
    print("RAM to apply an in-place update (staging %d, window 2^%d, %d deferred records%s):"
          % (a.staging, a.wbits, a.max_ops,
             ", frames %d, messages %d" % (a.max_frame, a.max_msg) if len(rows) > 1 else ""))
    line("  work area (g_work)", lambda r: "%d B" % r["bufs"].get("g_work", 0))
    line("  context (otaup_exec or otaup_apply)",
         lambda r: "%d B" % (r["bufs"].get("g_exec", 0) or r["bufs"].get("g_apply", 0)))
    line("  journal + flash description",
         lambda r: "%d B" % (r["bufs"].get("g_journal", 0) + r["bufs"].get("g_flash", 0)))
    line("  stack, deepest path (-fcallgraph-info)", lambda r: "%d B" % r["depth"])

    def total(r):
        return sum(r["bufs"].values()) + r["depth"]

    line("  total", lambda r: "%d B (%.1f KiB)" % (total(r), total(r) / 1024.0))
    print()
    print("Sector size and RAM: the staging buffer, inflate window and tables do not grow with")
    print("the sector size (a large sector is written by several steps; a torn one is rebuilt")
    print("through the scratch area with a %d-byte bounce buffer), so the totals above hold for"
          % 128)
    print("4, 16, 64 and 128 KiB sectors alike. Larger sectors cost flash (a scratch area as")
    print("large as the largest sector a step writes in part) and time, not RAM:")
    for kib in (4, 16, 64, 128):
        line("  %3d KiB sectors: RAM to apply / scratch" % kib,
             lambda r, kib=kib: "%d B / %d KiB" % (total(r), kib))
    if a.verbose:
        for r in rows:
            print("\n%s: deepest stack path (%d B):" % (r["name"], r["depth"]))
            for t in r["path"]:
                print("   %5s  %s" % (r["nodes"].get(t, (t, "?"))[1], t.split("/")[-1]))
            if r["unknown"]:
                print("   no stack figure for: %s" % ", ".join(sorted(x.split("/")[-1] for x in r["unknown"])))
            print("%s: code per object:" % r["name"])
            for o, s in sorted(r["per_obj"].items(), key=lambda x: -x[1]):
                print("   %6d  %s" % (s, o))
    return 0


if __name__ == "__main__":
    sys.exit(main())
