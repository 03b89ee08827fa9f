"""MD4 (RFC 1320), for Samba's NT password hash: OpenSSL 3 no longer offers it to hashlib."""

from __future__ import annotations

import struct

_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _MASK


def md4(message: bytes) -> bytes:
    length = (8 * len(message)) & 0xFFFFFFFFFFFFFFFF
    message += b"\x80" + b"\x00" * ((55 - len(message)) % 64) + struct.pack("<Q", length)
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for offset in range(0, len(message), 64):
        x = struct.unpack("<16I", message[offset:offset + 64])
        a, b, c, d = h
        for i in range(16):  # round 1: F(b, c, d) = (b & c) | (~b & d)
            k, s = i, (3, 7, 11, 19)[i % 4]
            a, b, c, d = d, _rotl((a + ((b & c) | (~b & d)) + x[k]) & _MASK, s), b, c
        for i in range(16):  # round 2: G = majority, constant 0x5A827999
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            a, b, c, d = d, _rotl((a + ((b & c) | (b & d) | (c & d)) + x[k] + 0x5A827999) & _MASK, s), b, c
        for i in range(16):  # round 3: H = parity, constant 0x6ED9EBA1
            k, s = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[i], (3, 9, 11, 15)[i % 4]
            a, b, c, d = d, _rotl((a + (b ^ c ^ d) + x[k] + 0x6ED9EBA1) & _MASK, s), b, c
        h = [(v + n) & _MASK for v, n in zip(h, (a, b, c, d), strict=True)]
    return struct.pack("<4I", *h)
