#!/usr/bin/env python3
"""Seed inputs for fuzz_journal (format in tests/fuzz/fuzz_journal.c).

    tests/fuzz/make-journal-corpus.py tests/fuzz/corpus/journal
"""
import os
import random
import sys

BEGIN, STEP, WIN, SEC, PONR, SWITCH, END, RESTORE = range(8)


def rec(kind, a=0, b=0, c=0, cut=0, k=0):
    return bytes([kind | (cut << 3) | (k << 5), a & 255, b & 255, c & 255])


def session(rng, n, step0=0):
    out = [rec(BEGIN, rng.randrange(256), rng.randrange(256), rng.randrange(256)), rec(PONR)]
    for i in range(n):
        s = step0 + i
        out.append(rec(rng.choice([WIN, SEC]), s, s >> 8, rng.randrange(256)))
        out.append(rec(STEP, s, s >> 8))
    out.append(rec(SWITCH, 1))
    out.append(rec(RESTORE, 2, 1))
    out.append(rec(RESTORE, 2, 2))
    out.append(rec(END, 0))
    return out


def inp(geo, a, patches=(), b=(), raw=b"", raw_first=False):
    head = bytes([geo, len(a) | (64 if raw_first else 0), len(patches), len(b)])
    return head + b"".join(a) + b"".join(patches) + b"".join(b) + raw


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1)
    seeds = {}
    for geo in (0x00, 0x09, 0x12, 0x1b, 0x14):  # 256/1, 512/4, 1024/8, 2048/16, 256/32
        a = session(rng, 8)[:40]
        cuts = [rec(r[0] & 7, r[1], r[2], r[3], cut=1 + (i % 3), k=i % 8)
                for i, r in enumerate(session(rng, 6, 100))]
        seeds[f"g{geo:02x}-history"] = inp(geo, a)
        seeds[f"g{geo:02x}-cuts"] = inp(geo, a[:20], b=cuts[:30])
        seeds[f"g{geo:02x}-patched"] = inp(geo, a, patches=[bytes([rng.randrange(256), rng.randrange(4), k, rng.randrange(256)]) for k in range(6)],
                                           b=[rec(STEP, 50), rec(END, 3, cut=2, k=1)])
        seeds[f"g{geo:02x}-raw"] = inp(geo, [], b=[rec(BEGIN, 1, 2, 3), rec(STEP, 0, cut=1, k=2)],
                                       raw=bytes(rng.randrange(256) for _ in range(300)), raw_first=True)
    # cuts at each write operation of a compaction (erase, snapshot, header)
    for geo in (0x00, 0x0d):  # 256 B / write size 1, 512 B / write size 8
        for pre in range(8):
            a = [rec(BEGIN, 7, 0, 1)] + [rec(STEP, i) for i in range(pre)]
            for torn in (1, 2, 3):
                b = [rec(STEP, 50 + i, cut=torn, k=i) for i in range(8)]
                seeds[f"g{geo:02x}-compact-{pre}-{torn}"] = inp(geo, a, b=b[:6])
                seeds[f"g{geo:02x}-compact-{pre}-{torn}b"] = inp(geo, a, b=b[:2] + b[6:] + b[2:6])
    seeds["too-small"] = inp(0x18, [rec(BEGIN)])  # 256 B sectors, write size 64: refused
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
