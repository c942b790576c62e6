#!/usr/bin/env python3
"""Seed corpus of fuzz_deflate_opt.

Input format of the target: byte 0 = window bits (9 + b % 7) and effort
(1 + (b / 7) % 4), byte 1 = feeding (bit 7: one call; else pieces and
flushes from a generator seeded with bytes 1..3), then the data.
Run from tests/: python3 fuzz/make-deflate-corpus.py
"""
import glob
import os
import random

out = "fuzz/corpus/deflate_opt"
for f in glob.glob(os.path.join(out, "*")):
    os.remove(f)
rng = random.Random(1)
words = [b"flash", b"sector", b"erase", b"write", b"the", b"of", b"delta", b"step", b"\n"]
text = b" ".join(rng.choice(words) for _ in range(900))[:4000]
src = open("../lib/server/deflate_opt.c", "rb").read()[:4000]
inner = bytearray()
while len(inner) < 4000:  # zero runs with sparse bytes, like the planner's difference bytes
    inner += bytes(rng.randrange(3, 200)) + bytes([rng.choice([0xF0, 0xF8, 0xFF, 0x04])])
seeds = {
    "empty-w15-e4": (bytes([6 + 7 * 3, 0x80, 0, 0]), b""),
    "one-w9-e1": (bytes([0, 0x80, 0, 0]), b"A"),
    "text-w9-e3-pieces": (bytes([0 + 7 * 2, 0x11, 0x22, 0x33]), text),
    "text-w15-e4-oneshot": (bytes([6 + 7 * 3, 0x80, 0, 0]), text),
    "source-w12-e2-pieces": (bytes([3 + 7 * 1, 0x05, 0x06, 0x07]), src),
    "inner-w10-e4-pieces": (bytes([1 + 7 * 3, 0x41, 0x42, 0x43]), bytes(inner[:4000])),
    "zeros-w11-e3": (bytes([2 + 7 * 2, 0x80, 0, 0]), bytes(3000)),
    "random-w13-e1-pieces": (bytes([4, 0x7F, 0x01, 0x02]), bytes(rng.randrange(256) for _ in range(2000))),
    "period512-w9-e4": (bytes([0 + 7 * 3, 0x80, 0, 0]),
                        (bytes(rng.randrange(256) for _ in range(512)) * 6)),
    "period513-w9-e2-pieces": (bytes([0 + 7 * 1, 0x09, 0x09, 0x09]),
                               (bytes(rng.randrange(256) for _ in range(513)) * 6)),
}
for k, (h, d) in seeds.items():
    with open(os.path.join(out, k), "wb") as f:
        f.write(h + d)
