"""The runs of stream entries the drain stored (np_analytics_drain_ranges, migration 0112): exactly once without an
index entry per event.

A batch read fresh from the stream (XREADGROUP ">") is a run of consecutive entries that no other consumer was given;
its transaction inserts the runs it stored as ranges of keys (:func:`entry_key`), and the exclusion constraint keeps
ranges disjoint. A redelivered entry (pending after a failure, or reclaimed from a stopped drainer) claims a one-entry
range with ON CONFLICT DO NOTHING before it is written (:data:`FENCE`): no row back means a committed range holds it
(stored already), and a range of a transaction still running makes the claim wait for that transaction. A drainer
whose entries another consumer reclaimed and stored meanwhile fails on the constraint (:class:`StaleBatch`).
"""

from __future__ import annotations

from collections.abc import Sequence

import aiopg
import psycopg2

__all__ = ["EXCLUSION_VIOLATION", "FENCE", "RANGES_CTE", "StaleBatch", "clear_ranges", "entry_key", "is_stale",
           "prune_ranges", "runs"]

EXCLUSION_VIOLATION = "23P01"
_SEQ = 1_000_000  # an entry id's sequence number within its millisecond stays far below this (checked)

# A CTE of the fresh batch's statement (store/events.py): the runs it stored, in the same transaction.
RANGES_CTE = """ranges AS (
    INSERT INTO np_analytics_drain_ranges (entries)
    SELECT int8range(lo, hi, '[]') FROM unnest(%(lo)s::bigint[], %(hi)s::bigint[]) AS x(lo, hi)
)"""
# Redelivered entries claim one-entry ranges; the keys returned are theirs to store (the others are stored already).
FENCE = """
INSERT INTO np_analytics_drain_ranges (entries)
SELECT int8range(k, k, '[]') FROM unnest(%(keys)s::bigint[]) AS k ORDER BY k
ON CONFLICT DO NOTHING
RETURNING lower(entries)
"""
_PRUNE = "DELETE FROM np_analytics_drain_ranges WHERE upper(entries) <= %(below)s"


class StaleBatch(Exception):
    """Entries of a fresh batch were reclaimed and stored by another consumer: this batch committed nothing."""


def entry_key(entry_id: str) -> int:
    """The key of a stream entry id ``<ms>-<seq>`` (ordered as the ids are)."""
    ms, _, seq = entry_id.partition("-")
    number = int(seq or 0)
    if number >= _SEQ:
        raise ValueError(f"stream entry id {entry_id!r}: sequence past {_SEQ}")
    return int(ms) * _SEQ + number


def runs(keys: Sequence[int | None]) -> tuple[list[int], list[int]]:
    """The maximal runs of consecutive stored entries, as (lows, highs): ``None`` marks an entry not stored here
    (dead-lettered or not written before the statement), which ends a run."""
    lows: list[int] = []
    highs: list[int] = []
    open_run = False
    for key in keys:
        if key is None:
            open_run = False
        elif open_run:
            highs[-1] = key
        else:
            lows.append(key)
            highs.append(key)
            open_run = True
    return lows, highs


def is_stale(exc: BaseException) -> bool:
    """The fresh batch's ranges overlap a committed claim: its entries were taken over."""
    return isinstance(exc, psycopg2.Error) and exc.pgcode == EXCLUSION_VIOLATION


async def prune_ranges(conn: aiopg.Connection, below: int | None) -> int:
    """Delete the ranges wholly below the key ``below`` (the stream's oldest entry's, or past its last id when it is
    empty): those entries were deleted from the stream, so none can be delivered again. ``None``: delete all (the
    stream itself is gone)."""
    async with conn.cursor() as cur:
        if below is None:
            await cur.execute("DELETE FROM np_analytics_drain_ranges")
        else:
            await cur.execute(_PRUNE, {"below": below})
        return int(cur.rowcount)


async def clear_ranges(conn: aiopg.Connection) -> int:
    return await prune_ranges(conn, None)
