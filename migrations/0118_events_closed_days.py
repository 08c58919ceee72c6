"""Closed days in a compact form: the events' name index without the time on every partition, the time-ordered one
only on the open days (issue 27 item 2; store/partitions.py, store/compaction.py).

1. np_analytics_events_event_idx (source_account_id, event) is built per partition with CREATE INDEX CONCURRENTLY
   and attached to an index created ON ONLY the parent (store/online_ddl.py, as 0101): B-tree de-duplication stores
   it in a few bytes per event.
2. Each open partition (its day ended less than CLOSE_AFTER ago, or is to come) gets its local (source_account_id,
   event, ts) index, built concurrently; partitions created from now on get it with the table.
3. np_analytics_events_event_ts_idx is dropped (a moment of ACCESS EXCLUSIVE under a 500 ms lock_timeout, retried):
   about 45-60 bytes per event on every day.

The closed days' other indexes are rebuilt full by the leader's hourly maintenance, a few partitions per run
(store/compaction.py), outside any migration. Not transactional (CONCURRENTLY); resumable as 0101.
Reads do not change; writers do not change (the drain inserts the same columns).
"""

from yoyo import step

from nself_analytics.store.online_ddl import EventsIndex, build_events_index, build_open_indexes, drop_events_index

__depends__ = {"0101_events_indexes"}
__transactional__ = False


def apply(conn) -> None:  # type: ignore[no-untyped-def]
    build_events_index(conn, EventsIndex("np_analytics_events_event_idx", "(source_account_id, event)", "event_idx"))
    build_open_indexes(conn)
    drop_events_index(conn, "np_analytics_events_event_ts_idx")
    build_open_indexes(conn)  # a partition created meanwhile by an older instance


step(apply)
