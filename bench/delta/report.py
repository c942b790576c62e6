#!/usr/bin/env python3
"""Render the delta benchmark's measurements (bench/delta/run.sh) as Markdown.

    report.py OUTDIR

Reads OUTDIR/{pairs,results,times,machine}.tsv and the otaup inspect
reports OUTDIR/PAIR.otaup-*.json; prints the report on stdout.
"""
import csv
import json
import math
import os
import statistics
import sys

TOOLS = ["otaup-inplace", "otaup-ab", "bsdiff", "xdelta3", "zstd"]
HEAD = {
    "otaup-inplace": "otaup inplace",
    "otaup-ab": "otaup ab",
    "bsdiff": "bsdiff",
    "xdelta3": "xdelta3 -9 -S djw",
    "zstd": "zstd -22 --long=27 --patch-from",
}
LARGE = 1 << 20  # "larger pairs": new image of at least 1 MiB


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def ms(v):
    if v is None:
        return "n/a"
    if v >= 10000:
        return "%.1f s" % (v / 1000)
    if v >= 1000:
        return "%.2f s" % (v / 1000)
    if v >= 10:
        return "%.0f ms" % v
    return "%.1f ms" % v


def mib(kb):
    if kb is None:
        return "n/a"
    return "%.1f MiB" % (kb / 1024)


def ratio(x):
    return "n/a" if x is None else "%.2f×" % x


def find_key(obj, names):
    """First value of a key in names, searching nested dicts breadth first."""
    queue = [obj]
    while queue:
        o = queue.pop(0)
        if isinstance(o, dict):
            for n in names:
                if n in o and not isinstance(o[n], (dict, list)):
                    return o[n]
            queue.extend(v for v in o.values() if isinstance(v, (dict, list)))
        elif isinstance(o, list):
            queue.extend(v for v in o if isinstance(v, (dict, list)))
    return None


def main():
    out = sys.argv[1]
    machine = {r[0]: r[1] for r in csv.reader(open(os.path.join(out, "machine.tsv")), delimiter="\t") if len(r) >= 2}
    pairs = read_tsv(os.path.join(out, "pairs.tsv"))
    results = read_tsv(os.path.join(out, "results.tsv"))
    times = read_tsv(os.path.join(out, "times.tsv"))

    res = {(r["pair"], r["tool"]): r for r in results}
    samples = {}
    for t in times:
        k = (t["pair"], t["tool"], t["phase"])
        samples.setdefault(k, []).append((int(t["us"]) / 1e6, int(t["peak_kb"])))

    def med(pair, tool, phase):
        s = samples.get((pair, tool, phase))
        if not s:
            return None, None
        return statistics.median(x[0] for x in s), statistics.median(x[1] for x in s)

    live = [p for p in pairs if p["status"] == "ok"]
    skipped = [p for p in pairs if p["status"] != "ok"]
    newsize = {p["pair"]: int(p["new_bytes"]) for p in live}

    def size(pair, tool):
        r = res.get((pair, tool))
        if not r or r["create"] != "ok" or not r["patch_bytes"]:
            return None
        return int(r["patch_bytes"])

    def status_note(pair, tool, phase):
        r = res.get((pair, tool))
        if not r:
            return "n/a"
        s = r[phase]
        if s == "ok":
            return None
        if s.startswith("FAILED"):
            return "**FAILED**"
        if s == "MISMATCH":
            return "**MISMATCH**"
        return s

    w = sys.stdout.write
    reps = machine.get("reps", "?")
    w("`%s`, %s.\n\n" % (machine.get("command", "bench/delta/run.sh"), machine.get("date", "?")))
    w("Machine: %s, %s cores, %s; %s. Load average (1, 5, 15 min) at the start: %s, at the end: %s "
      "(the machine is shared). "
      "Times are the median of up to %s runs (wall clock); memory is the peak resident set of the process.\n\n"
      % (machine.get("cpu", "?"), machine.get("cores", "?"), machine.get("memory", "?"),
         machine.get("os", "?"), machine.get("load0", "?"), machine.get("load", "?"), reps))
    if machine.get("spawn_us"):
        w("Starting a process (`true`) takes %s here; every time below includes it.\n\n"
          % ms(int(machine["spawn_us"]) / 1000.0))
    w("Tools: %s (commit %s), bsdiff %s, xdelta3 %s, zstd %s.\n\n"
      % (machine.get("otaup", "?"), machine.get("commit", "?"), machine.get("ver_bsdiff", "?"),
         machine.get("ver_xdelta3", "?"), machine.get("ver_zstd", "?")))

    def runs(pair, phase):
        return max([len(v) for k, v in samples.items() if k[0] == pair and k[2] == phase] or [0])

    w("#### Pairs\n\n| pair | release change | old bytes | new bytes | timing runs (create, apply) |\n"
      "|---|---|---:|---:|---:|\n")
    for p in live:
        w("| %s | %s | %s | %s | %d, %d |\n" % (p["pair"], p["label"], p["old_bytes"], p["new_bytes"],
                                            runs(p["pair"], "create"), runs(p["pair"], "apply")))
    for p in skipped:
        w("| %s | not available: %s | | | |\n" % (p["pair"], p["label"]))
    w("\n")

    # ---- sizes
    w("#### Patch size (bytes, % of the new image, ratio to bsdiff)\n\n")
    w("| pair | " + " | ".join(HEAD[t] for t in TOOLS) + " |\n")
    w("|---|" + "---:|" * len(TOOLS) + "\n")
    pct = {t: [] for t in TOOLS}
    rel = {t: [] for t in TOOLS}
    for p in live:
        n = p["pair"]
        b = size(n, "bsdiff")
        cells = []
        for t in TOOLS:
            s = size(n, t)
            note = status_note(n, t, "create")
            if s is None:
                cells.append(note or "n/a")
                continue
            pc = 100.0 * s / newsize[n] if newsize[n] else None
            rb = s / b if b else None
            cell = "%d (%.2f %%, %s)" % (s, pc, ratio(rb)) if pc is not None else "%d" % s
            anote = status_note(n, t, "apply")
            if anote and anote.startswith("**"):
                cell += " " + anote  # a patch that does not apply counts in no mean
            else:
                pct[t].append(pc)
                rel[t].append(rb)
            cells.append(cell)
        w("| %s | %s |\n" % (n, " | ".join(cells)))
    cells = []
    for t in TOOLS:
        g, r = geomean(pct[t]), geomean(rel[t])
        cells.append("n/a" if g is None else "%.2f %%, %s" % (g, ratio(r)))
    w("| **geometric mean** | %s |\n\n" % " | ".join(cells))

    # ---- creation
    w("#### Creation: time (ratio to bsdiff) and peak memory\n\n")
    w("| pair | " + " | ".join(HEAD[t] for t in TOOLS) + " |\n")
    w("|---|" + "---:|" * len(TOOLS) + "\n")
    crel = {t: [] for t in TOOLS}
    for p in live:
        n = p["pair"]
        bt, _ = med(n, "bsdiff", "create")
        cells = []
        for t in TOOLS:
            tm, kb = med(n, t, "create")
            note = status_note(n, t, "create")
            if tm is None or note:
                cells.append(note or "n/a")
                continue
            r = tm / bt if bt else None
            crel[t].append(r)
            cells.append("%s (%s), %s" % (ms(tm * 1000), ratio(r), mib(kb)))
        w("| %s | %s |\n" % (n, " | ".join(cells)))
    w("| **geometric mean of time ratios** | %s |\n\n"
      % " | ".join(ratio(geomean(crel[t])) if crel[t] else "n/a" for t in TOOLS))

    # ---- apply
    w("#### Apply: time and peak memory (output checked against the new image)\n\n")
    w("| pair | " + " | ".join(HEAD[t] for t in TOOLS) + " |\n")
    w("|---|" + "---:|" * len(TOOLS) + "\n")
    for p in live:
        n = p["pair"]
        cells = []
        for t in TOOLS:
            tm, kb = med(n, t, "apply")
            note = status_note(n, t, "apply")
            if note and note != "-":
                cells.append(note)
                continue
            if tm is None:
                cells.append(status_note(n, t, "create") or "n/a")
                continue
            cells.append("%s, %s, identical" % (ms(tm * 1000), mib(kb)))
        w("| %s | %s |\n" % (n, " | ".join(cells)))
    w("\n")

    # ---- otaup details
    sector = int(machine.get("sector", "0") or 0)
    ram_budget = int(machine.get("ram", "0") or 0)
    details = {}
    rows = []
    for p in live:
        n = p["pair"]
        for t in ("otaup-inplace", "otaup-ab"):
            path = os.path.join(out, "%s.%s.json" % (n, t))
            if not os.path.exists(path):
                continue
            try:
                with open(path) as f:
                    j = json.load(f)
            except ValueError:
                rows.append("| %s | %s | `inspect --json` output is not JSON | | | |\n" % (n, t[6:]))
                continue
            er = find_key(j, ["sectors_erased", "erased_sectors"])
            tot = find_key(j, ["sectors_total", "total_sectors"])
            ram = find_key(j, ["ram_needed", "apply_ram", "ram_required"])
            cyc = find_key(j, ["cycle_cost_patch", "cycle_cost_bytes"])
            fb = find_key(j, ["fallback"])
            details[(n, t)] = (er, tot, ram)
            et = "n/a"
            if er is not None and tot:
                et = "%s / %s (%.0f %%)" % (er, tot, 100.0 * float(er) / float(tot))
            cell_cyc = "" if t == "otaup-ab" else ("n/a" if cyc is None else "%s B" % cyc)
            if fb:
                et += " (whole-image fallback)"
            rows.append("| %s | %s | %s | %s | %s |\n" % (n, t[6:], et, cell_cyc,
                                                         "n/a" if ram is None else "%s B" % ram))
    if rows:
        w("#### otaup: flash work and terminal memory (from `otaup inspect --json`)\n\n")
        w("| pair | mode | sectors erased / total | cycle breaking cost (patch bytes) | RAM the terminal needs |\n"
          "|---|---|---:|---:|---:|\n")
        for r in rows:
            w(r)
        w("\n")

    # ---- targets
    w("#### Targets\n\n")
    g_ab = geomean(rel["otaup-ab"])
    if g_ab is None:
        w("- `ab` size ≤ bsdiff (geometric mean of ratios ≤ 1.00): n/a (no otaup figures)\n")
    else:
        w("- `ab` size ≤ bsdiff (geometric mean of ratios ≤ 1.00): %.3f× — %s; stretch 0.95×: %s\n"
          % (g_ab, "met" if g_ab <= 1.0 else "NOT met", "met" if g_ab <= 0.95 else "not met"))
    ia = [(p["pair"], size(p["pair"], "otaup-inplace"), size(p["pair"], "otaup-ab")) for p in live]
    ia = [(n, i / a) for n, i, a in ia if i and a]
    if ia:
        worst = max(ia, key=lambda x: x[1])
        g = geomean([x[1] for x in ia])
        w("- `inplace` ≤ 1.10 × `ab`: geometric mean %.3f×, worst %.3f× (%s) — %s\n"
          % (g, worst[1], worst[0], "met" if worst[1] <= 1.10 else "NOT met on every pair"))
    else:
        w("- `inplace` ≤ 1.10 × `ab`: n/a\n")
    sp = []
    for p in live:
        if newsize[p["pair"]] < LARGE:
            continue
        bt, _ = med(p["pair"], "bsdiff", "create")
        for t in ("otaup-ab", "otaup-inplace"):
            tm, _ = med(p["pair"], t, "create")
            if bt and tm and status_note(p["pair"], t, "create") is None:
                sp.append((p["pair"], t[6:], bt / tm))
    if sp:
        w("- creation ≥ 5× faster than bsdiff on the pairs of 1 MiB or more: %s — %s\n"
          % (", ".join("%s %s %.1f×" % x for x in sp), "met" if min(x[2] for x in sp) >= 5 else "NOT met on every pair"))
    else:
        w("- creation ≥ 5× faster than bsdiff on the larger pairs: n/a\n")
    rams = [(k, int(v[2])) for k, v in details.items() if v[2] is not None]
    if rams and ram_budget:
        lim = ram_budget + sector
        worst = max(rams, key=lambda x: x[1])
        w("- apply memory ≤ --ram + one sector (%d + %d = %d B), independent of the image size: "
          "largest need %d B (%s %s) — %s\n"
          % (ram_budget, sector, lim, worst[1], worst[0][0], worst[0][1][6:],
             "met" if worst[1] <= lim else "NOT met"))
    else:
        w("- apply memory ≤ --ram + one sector: n/a (not reported by `otaup inspect --json`)\n")
    bad = [(n, t, r[ph]) for (n, t), r in res.items() for ph in ("create", "apply")
           if r[ph] not in ("ok", "n/a", "-")]
    if bad:
        w("\n**FAILURES:**\n\n")
        for n, t, s in bad:
            w("- %s / %s: %s\n" % (n, t, s))
    w("\n")


if __name__ == "__main__":
    main()
