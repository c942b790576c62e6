#!/usr/bin/env python3
"""Check that a RAM-resident updater never reaches into the flash it rewrites.

    check_resident.py [--readelf arm-none-eabi-readelf] [--section .ramfunc]
                      [--allow .data --allow .bss ...] ELF...

ELF must be linked with -Wl,--emit-relocs (alias -q): the link then keeps
every relocation it resolved, and this check reads them.  Every relocation
that lands inside the RAM-resident section (default .ramfunc: the code
copied to RAM at start-up) names what that code calls or loads the address
of: a function (R_ARM_THM_CALL, R_ARM_THM_JUMP24, ...) or an object
(R_ARM_ABS32 in a literal pool, R_ARM_THM_MOVW_ABS_NC, ...).  The check
fails if any of them resolves into an allocated section other than the
RAM-resident one and the allowed RAM sections (default .data and .bss):
such a target is linked in flash, and during an in-place rewrite it may be
erased under the updater's feet.  A long-branch veneer does not hide a
call: the relocation names the real target, not the veneer.

Constants that merely equal a flash address (the slot's base, the journal
area) carry no relocation and are not reported.  Calls through function
pointers (the board's flash and link callbacks) are not visible to a
static check: the board must place those functions in RAM itself.

Exit status: 0 when every ELF passes, 1 when one has a reference into flash
(each is listed: the RAM-resident function, its target, the target's
section), 2 on a usage error (no such section, no relocations).
"""
import argparse
import re
import subprocess
import sys


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def sections(readelf, elf):
    """Allocated sections: name -> (index, address, size)."""
    out = {}
    for line in run([readelf, "-SW", elf]).splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)"
                     r"\s+[0-9a-f]+\s+(\S*)", line)
        if m and "A" in m.group(5):
            out[m.group(2)] = (int(m.group(1)), int(m.group(3), 16), int(m.group(4), 16))
    return out


def functions(readelf, elf, lo, hi):
    """Function symbols inside [lo, hi): sorted list of (address, name)."""
    funcs = []
    for line in run([readelf, "-sW", elf]).splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC":
            a = int(f[1], 16) & ~1
            if lo <= a < hi:
                funcs.append((a, f[7]))
    return sorted(funcs)


def owner(funcs, addr):
    name = "?"
    for a, n in funcs:
        if a > addr:
            break
        name = n
    return name


def check(readelf, elf, ram, allow):
    secs = sections(readelf, elf)
    if ram not in secs:
        print(f"{elf}: no section {ram}", file=sys.stderr)
        return 2
    _, lo, size = secs[ram]
    hi = lo + size
    ok_ranges = [(lo, hi)] + [(secs[s][1], secs[s][1] + secs[s][2]) for s in allow if s in secs]
    flash = [(n, a, a + s) for n, (_, a, s) in secs.items()
             if s and n != ram and n not in allow]
    funcs = functions(readelf, elf, lo, hi)
    relocs = 0
    bad = {}
    in_sec = False
    for line in run([readelf, "-rW", elf]).splitlines():
        if line.startswith("Relocation section"):
            in_sec = re.search(r"'\.rela?" + re.escape(ram) + r"'", line) is not None
            continue
        if not in_sec:
            continue
        f = line.split()
        if len(f) < 5 or not re.match(r"^[0-9a-f]{8}$", f[0]) or not f[2].startswith("R_ARM_"):
            continue
        relocs += 1
        target, name = int(f[3], 16) & ~1, f[4]
        if any(a <= target < b for a, b in ok_ranges):
            continue
        hit = [n for n, a, b in flash if a <= target < b]
        if not hit:
            continue  # an absolute or undefined weak symbol: not linked in flash
        where = owner(funcs, int(f[0], 16))
        bad.setdefault((where, name, hit[0]), 0)
        bad[(where, name, hit[0])] += 1
    if relocs == 0:
        print(f"{elf}: no relocations in {ram}; link with -Wl,--emit-relocs", file=sys.stderr)
        return 2
    if bad:
        print(f"{elf}: {len(bad)} reference(s) from {ram} into flash:")
        for (where, name, sec), n in sorted(bad.items()):
            print(f"  {where} -> {name} (in {sec}){'' if n == 1 else f' x{n}'}")
        return 1
    print(f"{elf}: {ram} ({size} B, {len(funcs)} functions) makes no reference into flash "
          f"({relocs} relocations checked)")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--readelf", default="arm-none-eabi-readelf")
    p.add_argument("--section", default=".ramfunc")
    p.add_argument("--allow", action="append", default=None,
                   help="an allocated RAM section the resident code may reference "
                        "(repeatable; default .data and .bss)")
    p.add_argument("elf", nargs="+")
    a = p.parse_args()
    allow = a.allow if a.allow is not None else [".data", ".bss"]
    rc = 0
    for e in a.elf:
        rc = max(rc, check(a.readelf, e, a.section, allow))
    sys.exit(rc)


if __name__ == "__main__":
    main()
