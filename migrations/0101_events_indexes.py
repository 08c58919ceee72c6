"""The indexes of np_analytics_events from 1.1.1's to 1.2.0's, never holding a lock a writer waits on for long.

1.2.0 reads the events by (source_account_id, event, ts) without the columns 1.1.1's covering index carried (funnels
and sessions read np_analytics_event_times), looks a person's events up by distinct id, and de-duplicates message ids
in np_analytics_message_ids instead of a unique index. So, in this order (consolidating 0060-0082 of the 1.2
development, which built the person index three times and the event index twice):

1. np_analytics_events_event_ts_idx (source_account_id, event, ts) and np_analytics_events_distinct_idx (the distinct
   id, partial) are built per partition with CREATE INDEX CONCURRENTLY and attached to an index created ON ONLY the
   parent (store/online_ddl.py): inserts go on while each partition is built.
2. np_analytics_message_ids gets the ids of the last two days' events, then the unique (message_id, ts) index and the
   covering index are dropped (a moment of ACCESS EXCLUSIVE each, taken under a 500 ms lock_timeout and retried), and
   the ids of events stored meanwhile are added. After the drop a 1.1.1 drain (which inserts ON CONFLICT (message_id,
   ts)) fails and leaves its entries in the queue: restart the instances as 1.2.0 (`start` refuses until this ran).

Not transactional (CONCURRENTLY cannot run in a transaction block); resumable: an interrupted run is not recorded
by yoyo, and the next `build` skips what is done (an attached partition, a dropped index).
"""

from yoyo import step

from nself_analytics.store.online_ddl import EventsIndex, build_events_index, drop_events_index, seed_message_ids

__depends__ = {"0100_schema_1_2"}
__transactional__ = False

INDEXES = (
    EventsIndex("np_analytics_events_event_ts_idx", "(source_account_id, event, ts)", "event_ts_idx"),
    EventsIndex("np_analytics_events_distinct_idx",
                "((coalesce(user_id, anonymous_id))) WHERE coalesce(user_id, anonymous_id) IS NOT NULL",
                "distinct_idx"),
)


def apply(conn) -> None:  # type: ignore[no-untyped-def]
    for index in INDEXES:
        build_events_index(conn, index)
    seed_message_ids(conn)
    drop_events_index(conn, "np_analytics_events_event_ts_covering_idx")
    drop_events_index(conn, "np_analytics_events_message_idx")
    seed_message_ids(conn)


step(apply)
