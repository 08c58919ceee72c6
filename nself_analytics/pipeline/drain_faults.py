"""How the drain tells a batch's data fault from a failure of the connection or the server, and cuts a batch to
ANALYTICS_BATCH_BYTES (pipeline/drain.py)."""

from __future__ import annotations

import aiopg
import psycopg2

__all__ = ["cut_by_bytes", "is_data_fault", "missing_partition"]

# SQLSTATE classes about the connection or the server's state, not about the data of a batch: the whole batch is
# retried with backoff. 08 connection, 25 transaction state, 40 serialization/deadlock, 42 schema (a migration
# missing), 53 resources, 55 lock not available, 57 operator intervention (shutdown, cancel), 58 system, XX internal.
_TRANSIENT_CLASSES = frozenset({"08", "25", "40", "42", "53", "55", "57", "58", "XX"})


def cut_by_bytes(entries: list[tuple[str, dict[str, str]]],
                 limit: int) -> tuple[list[tuple[str, dict[str, str]]], bool]:
    """The first entries whose payloads fit in ``limit`` bytes (at least one), and whether any were left."""
    total = 0
    for index, (_entry_id, fields) in enumerate(entries):
        total += len(fields.get("e", ""))
        if total > limit and index > 0:
            return entries[:index], True
    return entries, False


def missing_partition(exc: BaseException) -> bool:
    """Postgres found no partition for a row (a day not created yet, or pruned meanwhile)."""
    return isinstance(exc, psycopg2.Error) and exc.pgcode == "23514" and "no partition" in str(exc)


def is_data_fault(exc: psycopg2.Error, conn: aiopg.Connection | None = None) -> bool:
    """Whether Postgres refused the data of a batch (split it, dead-letter the culprits) rather than the connection
    or the server failing (retry the whole batch). An error with no SQLSTATE is a lost connection."""
    if exc.pgcode is None or (conn is not None and conn.closed) or missing_partition(exc):
        return False
    return exc.pgcode[:2] not in _TRANSIENT_CLASSES
