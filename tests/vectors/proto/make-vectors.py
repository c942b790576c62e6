#!/usr/bin/env python3
"""Golden frames of the otaup command protocol, version 1.

An independent encoder written from docs/protocol.md alone (it shares no
code with the C library). It writes one file per message form into the
directory given (default: the directory of this script). The C test
tests/test_proto.c builds the same messages with the C encoder and
compares the bytes; run this script only when the wire format changes on
purpose.
"""
import os
import struct
import sys
import zlib

SEQ = 7


def crc8(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


assert crc8(b"123456789") == 0xF4
assert zlib.crc32(b"123456789") == 0xCBF43926

MORE, CONT, ACKREQ = 0x01, 0x02, 0x04


def frame(mtype, payload, seq=SEQ, flags=0):
    hdr = bytearray(struct.pack("<BBBBBBHI", 0x4F, 0x55, 1, mtype, flags, 0, len(payload), seq))
    hdr[5] = crc8(bytes(hdr[0:5]) + bytes(hdr[6:12]))
    body = bytes(hdr) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def fragments(mtype, payload, max_frame, seq=SEQ):
    room = max_frame - 16
    out = b""
    off = 0
    while True:
        chunk = payload[off:off + room]
        flags = (CONT if off else 0) | (MORE if off + len(chunk) < len(payload) else 0)
        out += frame(mtype, chunk, seq, flags)
        off += len(chunk)
        seq += 1
        if off >= len(payload):
            return out


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def zz(src, addr):
    d = (src - addr) & 0xFFFFFFFF
    if d & 0x80000000:
        d -= 1 << 32
    return ((d << 1) ^ (d >> 31)) & 0xFFFFFFFF


def vstr(s):
    b = s.encode("utf-8")
    return bytes([len(b)]) + b


def pattern(n, start=0):
    return bytes((start + i) & 0xFF for i in range(n))


def tlv(tag, value):
    return bytes([tag, len(value)]) + value


SESSION = 0x0123456789ABCDEF


def info_full():
    p = tlv(0x01, b"T-0001") + tlv(0x02, b"OTA-M4") + tlv(0x03, b"1.2.3")
    p += tlv(0x04, struct.pack("<Q", 1700000000))
    p += tlv(0x05, bytes([2]) + pattern(16, 0xA0))
    p += tlv(0x06, struct.pack("<I", 196608))
    geo = struct.pack("<IIBB", 0x08000000, 4, 0xFF, 3)
    for count, size in ((4, 16384), (1, 65536), (7, 131072)):
        geo += struct.pack("<II", count, size)
    p += tlv(0x07, geo)
    p += tlv(0x08, struct.pack("<II", 0x08010000, 0xF0000))
    p += tlv(0x08, struct.pack("<II", 0x08008000, 0x4000))
    p += tlv(0x09, struct.pack("<BBII", 1, 0x01, 0x08004000, 0x4000) + bytes([1]) + pattern(8, 0x30))
    p += tlv(0x09, struct.pack("<BBII", 2, 0x00, 0x0800C000, 0x2000) + bytes([0]))
    p += tlv(0x0A, struct.pack("<BBIIII", 0, 0, 0x08020000, 0xE0000, 0, 0))
    p += tlv(0x0B, struct.pack("<II", 0x0800E000, 0x2000))
    p += tlv(0x0C, struct.pack("<I", 0x5B))
    p += tlv(0x0D, struct.pack("<I", 256))
    p += tlv(0x0E, struct.pack("<II", 16384, 32768))
    p += tlv(0x0F, struct.pack("<QIBB", 0x1122334455667788, 5, 2, 1))
    p += tlv(0x10, struct.pack("<I", 3))
    return p


def info_min():
    return (tlv(0x01, "Términal-ü".encode()) + tlv(0x02, b"M") + tlv(0x03, b"0.9")
            + tlv(0x04, struct.pack("<Q", 0)))


def records():
    r = {}
    r["20-erase"] = varint(0x08020000) + varint(0x20000)
    r["21-write"] = varint(0x1000) + varint(24) + b"\x00" + pattern(24, 0x40)
    r["21-write-deferred"] = varint(0x80) + varint(1 << 20) + b"\x01"
    r["22-copy"] = varint(0x08004000) + varint(zz(0x08000000, 0x08004000)) + varint(16384)
    r["23-diff"] = varint(0x2000) + varint(zz(0x1FF0, 0x2000)) + varint(17) + b"\x00" + pattern(17, 7)
    r["24-fill"] = varint(0x3000) + varint(0x0FFFFFFF) + b"\xA5"
    r["25-verify"] = varint(0x4000) + varint(1024) + b"\x03" + pattern(32, 0x80)
    r["26-data"] = b"\x01" + pattern(30, 0x11)
    r["27-step"] = varint(0) + varint(0x08000000) + varint(4096) + b"\x01" + pattern(8, 0x50)
    r["28-end"] = varint(12345)
    r["29-blob"] = pattern(29, 0x90)
    r["2a-sync"] = varint(128)
    return r


def rec(t, body):
    return bytes([t]) + varint(len(body)) + body


def batch_stream():
    s = rec(0x27, varint(3) + varint(0x08003000) + varint(0x1000) + b"\x01" + pattern(8, 0x60))
    s += rec(0x22, varint(0x08003000) + varint(zz(0x08002000, 0x08003000)) + varint(0x800))
    s += rec(0x23, varint(0x08003800) + varint(zz(0x08002800, 0x08003800)) + varint(20) + b"\x00" + pattern(20, 0x21))
    s += rec(0x28, varint(3))
    return s


def vectors():
    v = {}
    v["01-hello"] = frame(0x01, struct.pack("<BBBBIIHHI", 2, 1, 1, 0, 256, 1024, 4, 0, 0x4B))
    v["02-info"] = frame(0x02, info_full())
    v["02-info-min"] = frame(0x02, info_min())
    v["02-info-limits"] = frame(0x02, info_min() + tlv(0x11, struct.pack("<BBH", 12, 0, 32)))
    v["02-info-frag64"] = fragments(0x02, info_full(), 64)
    v["02-info-sha256"] = frame(0x02, info_min() + tlv(0x10, struct.pack("<I", 2))
                                + tlv(0x12, pattern(32, 0xE0)))
    text = "Mise à jour disponible — 1.3.0".encode("utf-8")
    v["03-notify"] = frame(0x03, bytes([1]) + vstr("1.3.0") + struct.pack("<QI", 1710000000, 12345) + text)
    v["04-consent"] = frame(0x04, struct.pack("<BBH", 1, 0, 0) + vstr("1.3.0"))
    v["04-consent-postpone"] = frame(0x04, struct.pack("<BBH", 4, 0, 90) + vstr(""))
    v["05-start"] = frame(0x05, struct.pack("<QB3x", SESSION, 0) + pattern(40))
    v["05-start-resume"] = frame(0x05, struct.pack("<QB3x", SESSION, 1))
    v["06-commit"] = frame(0x06, struct.pack("<QB3x", SESSION, 2))
    v["07-abort"] = frame(0x07, struct.pack("<Qi", SESSION, -13))
    v["08-result"] = frame(0x08, struct.pack("<Qi", SESSION, 0) + bytes([2]) + pattern(16, 0xC0) + vstr("1.3.0"))
    v["08-result-fail"] = frame(0x08, struct.pack("<Qi", SESSION, -50) + bytes([0]) + vstr("1.2.3"))
    v["09-ping-ackreq"] = frame(0x09, struct.pack("<I", 0xDEADBEEF), flags=ACKREQ)
    v["0a-progress"] = frame(0x0A, struct.pack("<IIIIB3x", 3, 10, 4096, 40960, 2))
    v["0b-ack"] = frame(0x0B, struct.pack("<IiHHI", 6, 0, 4, 0, 0xDEADBEEF))
    v["0c-nack"] = frame(0x0C, struct.pack("<IiI", 9, -31, 8))
    v["10-backup-req"] = frame(0x10, struct.pack("<B3xII", 1, 0, 200))
    v["10-backup-req-hash"] = frame(0x10, struct.pack("<BB2xII", 2, 0x01, 0x2000, 1))
    v["11-backup-data"] = frame(0x11, struct.pack("<BBHI", 1, 0x07, 0, 0x3F00) + bytes([1]) + pattern(8, 0xE0)
                                + pattern(16, 0xF0) + pattern(32, 0x10))
    v["12-restore-data"] = frame(0x12, struct.pack("<BBHI", 1, 0, 0, 0) + pattern(40, 0x20))
    v["13-sig-req"] = frame(0x13, struct.pack("<III", 1024, 0, 480))
    v["14-sig-data"] = frame(0x14, struct.pack("<B3xII", 0x01, 64, 96) + pattern(32, 0x33))
    for name, body in records().items():
        v[name] = frame(int(name[:2], 16), body)
    v["2f-batch"] = frame(0x2F, batch_stream())
    s = batch_stream()
    cut = 20  # inside the COPY record
    v["2f-batch-split"] = frame(0x2F, s[:cut], SEQ, MORE) + frame(0x2F, s[cut:], SEQ + 1, CONT)
    return v


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, data in sorted(vectors().items()):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
    print("wrote %d vectors to %s" % (len(vectors()), out))


if __name__ == "__main__":
    main()
