"""A seeded mutator for RAW/DNG files: bit flips, byte runs, truncation, splices,
and TIFF-header attacks (huge offsets and counts).  Deterministic per seed."""
from __future__ import annotations

import random
import struct


def mutate(data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    buf = bytearray(data)
    kind = rng.choice(["flip", "flip", "bytes", "truncate", "splice", "header", "zero"])
    n = len(buf)
    if kind == "flip":
        for _ in range(rng.randint(1, 64)):
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        i = rng.randrange(n)
        run = rng.randint(1, 256)
        buf[i:i + run] = bytes(rng.randrange(256) for _ in range(min(run, n - i)))
    elif kind == "truncate":
        buf = buf[: rng.randrange(1, n)]
    elif kind == "splice":
        a, b = sorted(rng.randrange(n) for _ in range(2))
        buf = buf[:a] + buf[b:] + buf[a:b]
    elif kind == "zero":
        i = rng.randrange(n)
        buf[i:i + rng.randint(16, 4096)] = b"\x00" * min(4096, n - i)
    else:  # corrupt TIFF structure: IFD offset, entry counts/offsets near the start
        fmt = "<I" if buf[:2] == b"II" else ">I"
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(4, min(n - 4, 2048))
            val = rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, n, n * 4, rng.randrange(1 << 32)])
            buf[i:i + 4] = struct.pack(fmt, val)
    return bytes(buf)
