#!/usr/bin/env python3
"""Generate synthetic OLD/NEW image pairs for the fault sweep.

usage: genpairs.py OUTDIR [SEED]

Writes OUTDIR/<name>/{old,new} for each case below (deterministic per SEED).
"""
import os
import random
import sys


def code_like(rnd, n, words=64):
    # compressible but varied: words from a small vocabulary, some random runs
    vocab = [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(2, 12))) for _ in range(words)]
    out = bytearray()
    while len(out) < n:
        if rnd.random() < 0.1:
            out += bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 40)))
        else:
            out += rnd.choice(vocab)
    return bytearray(out[:n])


def edits(rnd, b, k):
    b = bytearray(b)
    for _ in range(k):
        if not b:
            break
        p = rnd.randrange(len(b))
        for i in range(p, min(len(b), p + rnd.randint(1, 8))):
            b[i] = rnd.getrandbits(8)
    return b


def insert(rnd, b, k, size):
    b = bytearray(b)
    for _ in range(k):
        p = rnd.randrange(len(b) + 1)
        b[p:p] = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, size)))
    return b


def delete(rnd, b, k, size):
    b = bytearray(b)
    for _ in range(k):
        if len(b) < 2:
            break
        p = rnd.randrange(len(b))
        del b[p:p + rnd.randint(1, size)]
    return b


def move_blocks(rnd, b, k, size):
    b = bytearray(b)
    for _ in range(k):
        if len(b) < 2 * size:
            break
        p = rnd.randrange(len(b) - size)
        blk = b[p:p + size]
        del b[p:p + size]
        q = rnd.randrange(len(b))
        b[q:q] = blk
    return b


def swap_halves(b):
    h = len(b) // 2
    return bytearray(b[h:] + b[:h])


def main():
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rnd = random.Random(seed)
    cases = {}
    base = code_like(rnd, 40000)
    cases['edits'] = (base, edits(rnd, base, 60))
    cases['insert'] = (base, insert(rnd, base, 20, 300))
    cases['delete'] = (base, delete(rnd, base, 20, 300))
    cases['moved'] = (base, move_blocks(rnd, base, 12, 2000))
    cases['swap'] = (base, swap_halves(base))  # in place: every sector depends on another (cycles)
    cases['grow'] = (base, base + code_like(rnd, 30000))
    cases['shrink'] = (base, bytearray(base[:9000]) + edits(rnd, base[20000:30000], 5))
    ff = bytearray(base)
    ff[8192:8192 + 12000] = b'\xff' * 12000
    zz = bytearray(base)
    zz[4000:4000 + 9000] = b'\x00' * 9000
    cases['ff_region'] = (base, ff)
    cases['zero_region'] = (base, zz)
    cases['ff_to_data'] = (ff, edits(rnd, base, 10))
    cases['all_ff'] = (bytearray(b'\xff' * 20000), code_like(rnd, 20000))
    cases['to_all_ff'] = (base[:20000], bytearray(b'\xff' * 20000))
    cases['all_zero'] = (bytearray(20000), bytearray(b'\x00' * 16000) + code_like(rnd, 4000))
    cases['identical'] = (base, bytearray(base))
    cases['random'] = (bytearray(rnd.getrandbits(8) for _ in range(30000)),
                       bytearray(rnd.getrandbits(8) for _ in range(33000)))
    for n in (0, 1, 4095, 4096, 4097):
        cases['size%d' % n] = (code_like(rnd, n) if n else bytearray(), code_like(rnd, n) if n else bytearray())
    cases['from0'] = (bytearray(), code_like(rnd, 5000))
    cases['to0'] = (code_like(rnd, 5000), bytearray())
    cases['from4097'] = (code_like(rnd, 4097), edits(rnd, code_like(rnd, 4097), 3) + b'x' * 4000)
    for name, (o, n) in cases.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'old'), 'wb') as f:
            f.write(o)
        with open(os.path.join(d, 'new'), 'wb') as f:
            f.write(n)


if __name__ == '__main__':
    main()
