#!/usr/bin/env python3
"""Image pairs for bench/faults/cut2.sh that genpairs.py does not make.

usage: cut2pairs.py OUTDIR [SEED [SCALE]]

Writes OUTDIR/<name>/{old,new}, deterministic per SEED; SCALE (default 1)
multiplies the sizes. Kinds: sizes that are no multiple of a sector or of
a program unit, growth and shrink by several sectors, OLD an exact prefix
of NEW and the other way round, images differing in the last byte only or
the first byte only, a one-byte shift of the whole image, sectors in
reverse order (long in-place cycles), all-0xFF and all-0x00 to themselves
and to each other, data whose units read partly as erased.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genpairs  # noqa: E402  (code_like, edits: the same generators)


def code_like(rnd, n):
    return genpairs.code_like(rnd, n, words=48)


edits = genpairs.edits


def main():
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    scale = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rnd = random.Random(seed)
    S = lambda n: n * scale
    c = {}
    a = code_like(rnd, S(13337))
    c['odd_edit'] = (a, edits(rnd, a, 12))
    c['odd_grow3'] = (a, edits(rnd, a, 4) + code_like(rnd, S(3 * 4096 + 77)))
    c['odd_shrink3'] = (a, edits(rnd, a[S(5000):], 6))
    c['prefix_old'] = (a[:S(9001)], a)
    c['prefix_new'] = (a, a[:S(7003)])
    last = bytearray(a)
    last[-1] ^= 0x5A
    c['last_byte'] = (a, last)
    first = bytearray(a)
    first[0] ^= 0xA5
    c['first_byte'] = (a, first)
    c['shift1'] = (a, bytearray(b'\x17') + a[:-1])
    blk = 1024
    secs = [a[i:i + blk] for i in range(0, len(a) - len(a) % blk, blk)]
    c['reverse1k'] = (a, bytearray(b''.join(reversed(secs))) + a[len(a) - len(a) % blk:])
    c['ff_ff'] = (bytearray(b'\xff' * S(9000)), bytearray(b'\xff' * S(9000)))
    c['zz_zz'] = (bytearray(S(9000)), bytearray(S(9000)))
    c['ff_zz'] = (bytearray(b'\xff' * S(8191)), bytearray(S(8193)))
    c['zz_ff'] = (bytearray(S(8193)), bytearray(b'\xff' * S(8191)))
    # data whose program units are often partly erased-looking (0xFF, 0x00 runs)
    sp = bytearray()
    while len(sp) < S(10000):
        sp += rnd.choice([b'\xff' * rnd.randint(1, 9), b'\x00' * rnd.randint(1, 9),
                          bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 5)))])
    sp = sp[:S(10000)]
    c['sparse'] = (sp, edits(rnd, sp, 30))
    c['tiny_grow'] = (bytearray(b'AB'), code_like(rnd, S(6000) + 3))
    c['tiny_shrink'] = (code_like(rnd, S(6000) + 3), bytearray(b'A'))
    for name, (o, n) in c.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'old'), 'wb') as f:
            f.write(o)
        with open(os.path.join(d, 'new'), 'wb') as f:
            f.write(n)


if __name__ == '__main__':
    main()
