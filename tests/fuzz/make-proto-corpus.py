#!/usr/bin/env python3
"""Seed corpus of fuzz_proto from the golden vectors (tests/vectors/proto).

Input format of the target: byte 0 = max frame (bits 0..1) and read size
(bits 2..7), byte 1 = repair flag (bit 0), then the byte stream.
Run from tests/: python3 fuzz/make-proto-corpus.py
"""
import glob
import os

vec = sorted(glob.glob("vectors/proto/*.bin"))
out = "fuzz/corpus/proto"
for f in glob.glob(os.path.join(out, "*")):
    os.remove(f)
seeds = {}
for i, p in enumerate(vec):
    name = os.path.basename(p)[:-4]
    b = open(p, "rb").read()
    mode = (3 if len(b) > 1008 else 2) | ((i * 5 % 64) << 2)
    seeds[name] = bytes([mode, i & 1]) + b
allb = b"".join(open(p, "rb").read() for p in vec)
seeds["mixed-all-1024"] = bytes([2 | (7 << 2), 0]) + allb
g = b""
for p in vec[:10]:
    b = open(p, "rb").read()
    g += b"\x00\x4f\x4f\x55" + b + b[: len(b) // 2]
seeds["mixed-garbage-256"] = bytes([1 | (1 << 2), 1]) + g
seeds["frag64"] = bytes([0, 0]) + open("vectors/proto/02-info-frag64.bin", "rb").read()
seeds["batch-split"] = bytes([2 | (3 << 2), 0]) + open("vectors/proto/2f-batch-split.bin", "rb").read()
for k, v in seeds.items():
    with open(os.path.join(out, k), "wb") as f:
        f.write(v)
print("wrote %d seeds to %s" % (len(seeds), out))
