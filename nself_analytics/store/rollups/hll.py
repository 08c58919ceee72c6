"""HyperLogLog over the first 64 bits of a value's MD5 (:data:`HASH_SQL`): 2^14 one-byte registers.

(``hashtextextended`` was tried first: its low bits collide far more often than chance on short similar
ids such as ``anon12``, which linear counting turns into an undercount.)

Standard error 1.04 / sqrt(2^14) = 0.81%, so an estimate is within 2% of the true count about 98.6% of the
time (2.5 standard errors); small counts use linear counting, whose error is far smaller. A register is the
largest rank seen: the position of the first 1 bit in the 50 bits above the 14 index bits (51 when they are
all zero). :data:`REGISTER_SQL` computes (index, rank) in SQL exactly as :func:`add` does in Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["REGISTER_SQL", "M", "P", "add", "estimate", "merge", "registers"]

P = 14
M = 1 << P
_REST_BITS = 64 - P
_REST_MASK = (1 << _REST_BITS) - 1

# The 64-bit hash of the text SQL expression ``{v}``, a signed bigint.
HASH_SQL = "('x' || left(md5({v}), 16))::bit(64)::bigint"
# (index, rank) of the 64-bit hash ``{h}`` (a SQL bigint expression).
REGISTER_SQL = (
    f"({{h}} & {M - 1})::int",
    f"({_REST_BITS + 1} - length(ltrim((({{h}} >> {P}) & {_REST_MASK})::bit({_REST_BITS})::text, '0')))::int",
)


def registers(pairs: Iterable[tuple[int, int]]) -> bytearray:
    """Dense registers from (index, rank) pairs (several pairs of one index: the largest rank)."""
    out = bytearray(M)
    for index, rank in pairs:
        if rank > out[index]:
            out[index] = rank
    return out


_HIGH = int.from_bytes(b"\x80" * M, "little")  # bit 7 of every register (ranks are below 128)


def merge(sketches: Iterable[bytes]) -> bytearray:
    """The registers of the union of dense sketches (M bytes each): the largest rank per register.

    All registers at once as one big integer (8-bit lanes): for each lane ``(a | 0x80) - b`` keeps bit 7
    exactly when a >= b (no borrow crosses lanes), which selects a or b; a per-byte loop in Python took
    0.2 s for 90 days, this takes milliseconds."""
    out = 0
    for sketch in sketches:
        b = int.from_bytes(sketch, "little")
        keep = ((((out | _HIGH) - b) & _HIGH) >> 7) * 0xFF  # 0xFF in the lanes where out >= b
        out = (out & keep) | (b & ~keep)
    return bytearray(out.to_bytes(M, "little"))


def add(regs: bytearray, hashes: Iterable[int]) -> None:
    """Add 64-bit hashes (signed, as PostgreSQL returns them) to the registers."""
    for h in hashes:
        index = h & (M - 1)
        rank = _REST_BITS + 1 - ((h >> P) & _REST_MASK).bit_length()
        if rank > regs[index]:
            regs[index] = rank


def estimate(regs: bytearray) -> int:
    """The HyperLogLog estimate of the distinct values added (linear counting while it is small)."""
    alpha = 0.7213 / (1 + 1.079 / M)
    raw = alpha * M * M / sum(2.0 ** -r for r in regs)
    zeros = regs.count(0)
    if raw <= 2.5 * M and zeros:
        return round(M * math.log(M / zeros))
    return round(raw)
