#!/usr/bin/env python3
"""bench/faults/edgegeo.py -- the planner and the terminal executor on flash
geometries and image shapes the other campaigns (sweep.sh, cut2.sh,
realpairs.sh) do not try, through the otaup CLI.

Geometries: flashes that end exactly at 2^32 or start just below it,
sector maps of eight runs with 256-byte sectors, write sizes 2..4096 with
images of no multiple of them and erased 0x00, A/B back to --target 0 or
--base from a slot above, in place with OLD away from --base, the least
--ram the planner takes, --window-bits 9, --restart-interval 1,
--no-step-hash, deltas from a block signature. Shapes: NEW or OLD empty,
one byte, NEW = OLD but the last byte, long runs of the erased value,
blocks swapped between sectors (in-place cycles), growth and shrink by odd
sizes.

For every pair x setting:
  * otaup delta either writes a delta (exit 0) or refuses with exit 1 and
    a message; anything else (crash, hang, other code) is a FAIL;
  * otaup apply OLD PATCH -o OUT gives NEW;
  * FLASH is the whole flash filled with random user data, OLD at its
    place; a clean run, then a cut (plain and torn) after EVERY flash
    operation followed by a resume, a failed operation (--fail-after) at
    every operation (torn every other one), a faulty read (--read-fault,
    with and without --flip; no --flip with --no-step-hash) at READS reads; every end state holds NEW at
    the target (in place: its first len(NEW) bytes), the bytes outside
    the sectors of the slot(s) and the scratch area as they were, A/B the
    old slot intact (after every cut too), no sidecar left.

usage: edgegeo.py [OTAUP] ; knobs: OUT (/tmp/otaup-edgegeo), FILTER (regex
on "pair.setting"), MAXOPS (cut at every op only up to this many, 600),
READS (faulty reads per delta, 12), TIMEOUT (s per command, 60).
Prints one FAIL line per failure with the commands that reproduce it and
a summary; exit 1 if anything failed.
"""
import json
import os
import random
import re
import subprocess
import sys
import time
import zlib

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OTAUP = sys.argv[1] if len(sys.argv) > 1 else os.path.join(SRC, "build/dev/examples/otaup/otaup")
OUT = os.environ.get("OUT", "/tmp/otaup-edgegeo")
FILTER = os.environ.get("FILTER", "")
MAXOPS = int(os.environ.get("MAXOPS", "600"))
READS = int(os.environ.get("READS", "12"))
TIMEOUT = int(os.environ.get("TIMEOUT", "60"))

fails = []
count = {"deltas": 0, "refused": 0, "runs": 0, "cuts": 0, "failops": 0, "reads": 0}


def fail(msg):
    fails.append(msg)
    print("FAIL " + msg, flush=True)


def run(args):
    count["runs"] += 1
    try:
        p = subprocess.run([OTAUP] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
        return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "timeout", ""


# ---- pairs -------------------------------------------------------------------

def rnd_bytes(r, n):
    return bytes(r.getrandbits(8) for _ in range(n))


def code_like(r, n):
    vocab = [rnd_bytes(r, r.randint(2, 10)) for _ in range(48)]
    out = bytearray()
    while len(out) < n:
        out += rnd_bytes(r, r.randint(1, 30)) if r.random() < 0.1 else r.choice(vocab)
    return bytes(out[:n])


def edit(r, b, k):
    b = bytearray(b)
    for _ in range(k):
        if b:
            p = r.randrange(len(b))
            b[p:p + r.randint(1, 40)] = rnd_bytes(r, r.randint(1, 40))
    return bytes(b)


def make_pairs():
    r = random.Random(7)
    P = {}
    base = code_like(r, 5001)
    P["edit_odd"] = (base, edit(r, base, 6))
    P["grow_odd"] = (base[:3001], edit(r, base, 3)[:4999])
    P["shrink_odd"] = (base, edit(r, base, 3)[:2047])
    P["new_empty"] = (base[:2500], b"")
    P["new_1"] = (base[:2500], b"\x5a")
    P["old_empty"] = (b"", base[:2777])
    P["both_empty"] = (b"", b"")
    P["old_1_new_1"] = (b"\x01", b"\x02")
    lb = bytearray(base[:4099])
    lb[-1] ^= 0x55
    P["last_byte"] = (base[:4099], bytes(lb))
    P["same_odd"] = (base[:3333], base[:3333])
    # long runs of 0xFF and 0x00 inside NEW (fill records, either erased value)
    f = bytearray(base[:4600])
    f[300:2300] = b"\xff" * 2000
    f[2600:4100] = b"\x00" * 1500
    P["fills"] = (base[:4600], bytes(f) + b"\x00" * 333 + b"\xff" * 333)
    # blocks swapped between sectors: in-place cycles (512-byte and odd blocks)
    blk = [code_like(r, 512) for _ in range(10)]
    old = b"".join(blk)
    perm = [1, 0, 3, 2, 9, 4, 5, 6, 7, 8]
    P["swap512"] = (old, b"".join(blk[i] for i in perm))
    blk = [rnd_bytes(r, 700) for _ in range(6)]
    P["rot700"] = (b"".join(blk), b"".join(blk[(i + 1) % 6] for i in range(6)))
    P["rev_edit"] = (b"".join(blk), edit(r, b"".join(reversed(blk)), 2)[:4000])
    return P


# ---- settings: label, options, pairs ("*" = all) ----------------------------

ALL = "*"
SETS = [
    # flashes at the top of the 32-bit address space
    ("top-ip-map", "--sector-map 8x1K --base 0xFFFFE000", ALL),
    ("top-ip-map-ws16", "--sector-map 16x512 --base 0xFFFFE000 --write-size 16 --erased 0", ALL),
    ("top-ip-uni", "--base 0xFFFF0000 --sector-size 1024 --ram 12K", ALL),
    ("top-ip-slot-last", "--sector-map 16x1K --base 0xFFFFC000 --source 0xFFFFE000 --scratch 0xFFFFC000 --scratch-size 0x2000 --staging 1024", ALL),
    ("top-ip-at-top", "--sector-map 8x1K,1x8K --base 0xFFFFC000 --source 0xFFFFE000 --scratch 0xFFFFC000 --scratch-size 0x2000 --write-size 4", ALL),
    ("top-ip-at-top-s1k", "--sector-size 1024 --base 0xFFFFC000 --source 0xFFFFE000 --scratch 0xFFFFC000 --scratch-size 0x1000 --erased 0", ALL),
    ("top-ab-to-top", "--mode ab --sector-map 8x1K,1x8K --base 0xFFFFC000 --target 0xFFFFE000 --write-size 8", ALL),
    ("top-ab-from-top", "--mode ab --sector-map 8x1K,1x8K --base 0xFFFFC000 --source 0xFFFFE000 --target 0xFFFFC000", ALL),
    ("top-ab-default", "--mode ab --sector-map 16x1K --base 0xFFFFC000 --source 0xFFFFC400", ALL),
    ("top-ab", "--mode ab --sector-map 16x1K --base 0xFFFFC000", ALL),
    ("top-ab-back", "--mode ab --sector-map 16x1K --base 0xFFFFC000 --source 0xFFFFE000 --target 0xFFFFC000", ALL),
    ("top-ab-last", "--mode ab --sector-map 16x1K --base 0xFFFFC000 --source 0xFFFFC000 --target 0xFFFFE000", ALL),
    ("top-8runs-ab-end", "--mode ab --sector-map 2x256,2x512,2x256,1x1K,2x512,4x1K,1x2K,4x1K --base 0xFFFFC800 --write-size 8", ALL),
    ("top-8runs-ip-end", "--sector-map 4x1K,2x512,2x256,1x1K,2x512,1x8K,1x2K,2x4K --base 0xFFFF9A00 --source 0xFFFFE000 --scratch 0xFFFFB800 --scratch-size 0x2000 --write-size 4", ALL),
    ("8runs-nojournal", "--sector-map 2x256,2x512,2x256,1x1K,2x512,4x1K,1x2K,4x256 --base 0 --write-size 64", ALL),
    ("top-8runs-ab", "--mode ab --sector-map 2x256,2x512,2x256,1x1K,2x512,4x1K,1x2K,4x1K --base 0xFFFFC000 --write-size 8", ALL),
    # eight runs with tiny sectors
    ("8runs-ip", "--sector-map 3x256,2x512,1x256,2x1K,1x512,2x2K,2x256,8x1K --write-size 4", ALL),
    ("8runs-ip-base", "--sector-map 3x256,2x512,1x256,2x1K,1x512,2x2K,2x256,8x1K --base 0x1000 --source 0x1200 --write-size 8 --erased 0", ALL),
    ("8runs-ab-back", "--mode ab --sector-map 4x256,2x1K,1x512,4x1K,1x256,6x1K,1x512,2x256 --source 0x2900 --target 0 --write-size 2", ALL),
    # write sizes with erased 0x00 and images of no multiple of them
    ("ws2-er0", "--write-size 2 --erased 0 --sector-size 512", ALL),
    ("ws32-er0", "--write-size 32 --erased 0 --sector-size 1024 --source 0x800", ALL),
    ("ws256-er0-ab", "--mode ab --write-size 256 --erased 0 --sector-size 1024", ALL),
    ("ws4096-er0", "--write-size 4096 --erased 0 --sector-size 4096 --ram 20K", ALL),
    # least RAM, smallest window, restart every step, no step hash
    ("ram-min", "--ram 8704 --sector-size 256 --window-bits 9", ALL),
    ("wb9-r1-nohash", "--window-bits 9 --restart-interval 1 --no-step-hash --sector-size 512 --write-size 4", ALL),
    ("ab-r1-nohash-er0", "--mode ab --restart-interval 1 --no-step-hash --erased 0 --sector-size 256 --write-size 8", ALL),
    ("src-away", "--sector-size 512 --base 0x08000000 --source 0x08001000 --write-size 2", ALL),
    ("ab-target0", "--mode ab --sector-size 1024 --source 0x4000 --target 0 --write-size 16 --erased 0", ALL),
    # from a block signature
    ("sig-ip-256runs", "SIG64 --sector-map 3x256,2x512,1x256,2x1K,1x512,2x2K,2x256,8x1K --write-size 4", ALL),
    ("sig-ab-top", "SIG64 --mode ab --sector-map 16x1K --base 0xFFFFC000 --source 0xFFFFE000 --target 0xFFFFC000 --erased 0", ALL),
    ("sig-ip-er0-ws8", "SIG128 --erased 0 --write-size 8 --sector-size 512 --restart-interval 1", ALL),
]


def sector_span(runs, base, addr, n):
    """[start, end) of the sectors covering [addr, addr+n) (n > 0)."""
    s, a = None, base
    for cnt, size in runs:
        for _ in range(cnt):
            e = a + size
            if s is None and addr < e:
                s = a
            if s is not None and addr + n <= e:
                return (s, e)
            a = e
    return (s if s is not None else a, a)


def one(pname, old, new, label, opts):
    w = os.path.join(OUT, "w", pname + "." + label)
    os.makedirs(w, exist_ok=True)
    po, pn, d = os.path.join(w, "old"), os.path.join(w, "new"), os.path.join(w, "p.delta")
    open(po, "wb").write(old)
    open(pn, "wb").write(new)
    args = opts.split()
    if args and args[0].startswith("SIG"):
        bs = args[0][3:]
        rc, out = run(["sig", po, "-o", po + ".sig", "--block-size", bs, "-q"])
        if rc != 0:
            fail("%s %s: sig exit %s: %s" % (pname, label, rc, out.strip()[:200]))
            return
        dargs = ["delta", "--from-sig", po + ".sig", pn, "-o", d, "-q"] + args[1:]
    else:
        dargs = ["delta", po, pn, "-o", d, "-q"] + args
    if os.path.exists(d):
        os.unlink(d)
    rc, out = run(dargs)
    if rc != 0:
        if rc == 1 and out.strip():
            count["refused"] += 1
            print("refused %s %s: %s" % (pname, label, out.strip().splitlines()[0]))
        else:
            fail("%s %s: delta exit %s: %s %s" % (pname, label, rc, OTAUP, " ".join(dargs)))
        return
    count["deltas"] += 1
    rc, out = run(["inspect", "--json", d])
    if rc != 0:
        fail("%s %s: inspect exit %s" % (pname, label, rc))
        return
    j = json.loads(out[out.index("{"):])
    g = j["geometry"]
    base, er = g["base"], g["erased"]
    runs = [(x["count"], x["size"]) for x in g["runs"]]
    fsize = sum(c * s for c, s in runs)
    src, tgt = j["source_addr"] - base, j["target_addr"] - base
    ab = j["layout"] == "ab"
    rc, out = run(["apply", po, d, "-o", os.path.join(w, "out")])
    if rc == 1 and "cannot place a journal" in out:
        # documented (docs/cli.md, otaup apply): 8 runs, first and last
        # sectors below eight program units
        count["refused"] += 1
        print("refused %s %s: %s" % (pname, label, out.strip().splitlines()[-1]))
        return
    if rc != 0 or open(os.path.join(w, "out"), "rb").read() != new:
        fail("%s %s: apply -o exit %s or OUT != NEW: %s apply %s %s -o OUT" % (pname, label, rc, OTAUP, po, d))
        return
    # the flash: user data everywhere, OLD at its place
    r = random.Random(zlib.crc32((pname + "." + label).encode()))
    if fsize > (4 << 20):
        fail("%s %s: flash of %d bytes too large for this campaign" % (pname, label, fsize))
        return
    flash0 = bytearray(rnd_bytes(r, fsize))
    flash0[src:src + len(old)] = old
    flash0 = bytes(flash0)
    touched = []  # [start, end) offsets the update may change
    touched.append(tuple(x - base for x in sector_span(runs, base, j["source_addr"], max(len(old), 1))))
    touched.append(tuple(x - base for x in sector_span(runs, base, j["target_addr"], max(len(new), 1))))
    if j.get("scratch_size", 0):
        touched.append((j["scratch_addr"] - base, j["scratch_addr"] - base + j["scratch_size"]))
    if ab:
        touched = touched[1:]  # the old slot stays whole

    f = os.path.join(w, "F")
    open(os.path.join(w, "F0"), "wb").write(flash0)

    def fresh():
        open(f, "wb").write(flash0)
        if os.path.exists(f + ".otaup-state"):
            os.unlink(f + ".otaup-state")

    def check(rep, final):
        b = open(f, "rb").read()
        b = b + bytes([er]) * (fsize - len(b)) if len(b) < fsize else b
        if len(b) != fsize:
            return "FLASH is %d bytes, flash %d" % (len(b), fsize)
        for s, e in _complement(touched, fsize):
            if b[s:e] != flash0[s:e]:
                k = next(i for i in range(s, e) if b[i] != flash0[i])
                return "user data changed at offset 0x%x (flash 0x%x)" % (k, base + k)
        if ab and b[src:src + len(old)] != old:
            return "A/B old slot changed"
        if final:
            if b[tgt:tgt + len(new)] != new:
                k = next(i for i in range(len(new)) if b[tgt + i] != new[i])
                return "target != NEW at +0x%x" % k
            if os.path.exists(f + ".otaup-state"):
                return "sidecar left"
        return None

    fresh()
    rc, out = run(["apply", "--flash", f, d, "--stats"])
    if rc == 1 and "cannot place a journal" in out:
        count["refused"] += 1
        print("refused %s %s: %s" % (pname, label, out.strip().splitlines()[-1]))
        return
    why = check("", True) if rc == 0 else "exit %s: %s" % (rc, out.strip()[-200:])
    if why:
        fail("%s %s: clean run: %s (cp %s/F0 F; %s apply --flash F %s)" % (pname, label, why, w, OTAUP, d))
        return
    m = re.search(r"flash operations: *(\d+)", out)
    ops = int(m.group(1)) if m else 0
    m = re.search(r"flash reads: *(\d+)", out)
    reads = int(m.group(1)) if m else 0
    # a second run: already there, nothing changed
    snap = open(f, "rb").read()
    rc, out = run(["apply", "--flash", f, d])
    if rc != 0 or open(f, "rb").read() != snap:
        fail("%s %s: run after success: exit %s or FLASH changed" % (pname, label, rc))

    def seq(extra, repname, expect_cut=True):
        fresh()
        rc, out = run(["apply", "--flash", f, d] + extra)
        rep = "cp %s/F0 F; %s apply --flash F %s %s" % (w, OTAUP, d, " ".join(extra))
        if rc not in (0, 3):
            fail("%s %s: %s: exit %s: %s (%s)" % (pname, label, repname, rc, rep, out.strip()[-200:]))
            return
        why = check(rep, rc == 0)
        if why:
            fail("%s %s: %s: after the first run: %s: %s" % (pname, label, repname, why, rep))
            return
        if rc == 3:
            rc, out = run(["apply", "--flash", f, d])
            why = check(rep, True) if rc == 0 else "resume exit %s: %s" % (rc, out.strip()[-200:])
            if why:
                fail("%s %s: %s: %s: %s; %s apply --flash F %s" % (pname, label, repname, why, rep, OTAUP, d))

    if ops == 0:
        return
    ks = list(range(1, ops + 1)) if ops <= MAXOPS else sorted(set(r.randrange(1, ops + 1) for _ in range(MAXOPS)))
    for k in ks:
        for torn in ([], ["--torn"]):
            count["cuts"] += 1
            seq(["--cut-after", str(k)] + torn, "cut")
    for i, k in enumerate(ks):
        count["failops"] += 1
        seq(["--fail-after", str(k)] + (["--torn"] if i % 2 else []), "fail")
        if i % 7 == 3 and k + 2 <= ops:
            count["failops"] += 1
            seq(["--fail-after", str(k), "--cut-after", str(k + 2)], "fail+cut")
    if reads:
        for i in range(READS):
            k = 1 + (i * reads) // READS + r.randrange(max(1, reads // READS))
            k = min(k, reads)
            count["reads"] += 1
            # a wrong bit read without step hashes is caught only by the
            # final check, after it was written (docs/cli.md, --no-step-hash)
            flip = i % 2 == 1 and "--no-step-hash" not in opts
            seq(["--read-fault", str(k)] + (["--flip"] if flip else []), "read")


def _complement(ranges, n):
    rs = sorted((max(0, s), min(n, e)) for s, e in ranges if e > s)
    out, p = [], 0
    for s, e in rs:
        if s > p:
            out.append((p, s))
        p = max(p, e)
    if p < n:
        out.append((p, n))
    return out


def main():
    t0 = time.time()
    P = make_pairs()
    for label, opts, which in SETS:
        for pname, (old, new) in P.items():
            if which != ALL and pname not in which:
                continue
            if FILTER and not re.search(FILTER, pname + "." + label):
                continue
            one(pname, old, new, label, opts)
        print("[%ds] %s: %s fails %d" % (time.time() - t0, label, count, len(fails)), flush=True)
    print("edgegeo: %d deltas (%d refused), %d cuts, %d failed ops, %d faulty reads; %d otaup runs, %d failures in %ds"
          % (count["deltas"], count["refused"], count["cuts"], count["failops"], count["reads"], count["runs"],
             len(fails), time.time() - t0))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
