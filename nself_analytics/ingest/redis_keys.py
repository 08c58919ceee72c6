"""Redis key names of the ingest queue, the counters and the dead letters (all under one prefix)."""

from __future__ import annotations

__all__ = [
    "COUNTER_PREFIX",
    "DEAD_LETTER_KEY",
    "DEDUPE_PREFIX",
    "DRAIN_GROUP",
    "DROPPED_KEY",
    "DROPPED_SUPPRESSED_KEY",
    "LINKS_REFUSED_KEY",
    "NAMES_DROPPED_KEY",
    "NAMES_PREFIX",
    "NAME_BLOCKED_PREFIX",
    "NAME_DELETIONS_KEY",
    "NAME_DROPPED_PREFIX",
    "NAME_FIRST_PREFIX",
    "NAME_PUBLIC_PREFIX",
    "PREFIX",
    "QUEUE_BYTES_KEY",
    "STREAM_KEY",
    "SUPPRESSED_KEY",
    "SUPPRESSED_SALT_KEY",
    "SUPPRESSED_VERSION_KEY",
    "dedupe_prefix",
]

PREFIX = "np_analytics:"
# The ingest queue: a Redis Stream; entries are deleted once committed to Postgres, so its length
# is the number of events in flight. No TTL: entries live until drained.
STREAM_KEY = PREFIX + "events"
DRAIN_GROUP = "drain"
# Seen message ids, so a retried message is enqueued once. TTL: DEDUPE_TTL_SECONDS (24 h, as Segment). One key
# per (account, id): DEDUPE_PREFIX + account + ":" + id (dedupe_prefix), so one account's use of an id neither
# suppresses nor reveals another's. (Up to 1.1.1 the key had no account, DEDUPE_PREFIX + id: such keys are
# never read again and expire with their TTL; a retry of such a message is caught by np_analytics_message_ids,
# which has always been per account, unless ANALYTICS_DEDUPE_WINDOW is 24h.)
DEDUPE_PREFIX = PREFIX + "m:"
DEDUPE_TTL_SECONDS = 86_400


def dedupe_prefix(account: str) -> str:
    """The prefix of an account's de-duplication keys (the 36-character message id follows it)."""
    return f"{DEDUPE_PREFIX}{account}:"


# Real-time counters, one key per period bucket; TTLs in queue.COUNTER_PERIODS.
COUNTER_PREFIX = PREFIX + "c:"
# Queue entries the drain could not store (see pipeline/deadletters.py). Bounded by ANALYTICS_DEAD_LETTER_MAX entries
# and trimmed to the retention window by the prune job (no key TTL: a TTL would drop them all at once).
DEAD_LETTER_KEY = PREFIX + "dead"
# Bytes of the payloads in the ingest stream: added by the enqueue script, taken off by the drain in the same
# transaction as its XDEL; reset to 0 whenever the stream is empty. No TTL: it describes the stream.
QUEUE_BYTES_KEY = PREFIX + "events:bytes"
# Sorted set per account (key NAMES_PREFIX + account): event name -> Unix time last seen; at most
# ANALYTICS_MAX_EVENT_NAMES members. TTL: the retention window, renewed by every use; members older than the
# window are removed by the hourly maintenance.
NAMES_PREFIX = PREFIX + "names:"
# Hash: source account -> events not stored because they were older than the retention window (read by /health).
# No TTL: a running total since the Redis data began.
DROPPED_KEY = PREFIX + "dropped:too_old"

# The admin of event names (README "Security"; ingest/name_admin.py). Not under NAMES_PREFIX: the hourly
# maintenance scans that prefix for the sorted sets above.
# Set per account: blocked names (messages with one are dropped and counted). No TTL: until unblocked.
NAME_BLOCKED_PREFIX = PREFIX + "name_blocked:"
# Hash per account: event name -> "<public|server>:<Unix time>" of the message that first brought it in. Fields
# leave with their name (maintenance, deletion); TTL: the retention window, renewed with the names set's.
NAME_FIRST_PREFIX = PREFIX + "name_first:"
# Hash per account: event name -> messages dropped because of that name (blocked, over a limit). TTL: as above.
NAME_DROPPED_PREFIX = PREFIX + "name_dropped:"
# Counter per account and UTC day (key NAME_PUBLIC_PREFIX + account + ":" + YYYYMMDD): new names brought by a
# public write key that day (ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY). TTL: two days.
NAME_PUBLIC_PREFIX = PREFIX + "name_public:"
# Hash: "<account>|<reason>" -> messages dropped for their event name (reason: cap, public_daily, blocked); read
# by /health. No TTL: a running total since the Redis data began.
NAMES_DROPPED_KEY = PREFIX + "dropped:names"
# Hash: "<account>\n<name>" -> JSON of a deletion of a name's events in progress (the leader's name deletion job).
NAME_DELETIONS_KEY = PREFIX + "name_deletions"

# Erasure's suppression list (ingest/suppressed.py; the table np_analytics_suppressions is the truth, the leader's
# `erasures` loop keeps this copy equal to it): a set of salted hashes (never an id), the salt they were made with,
# and a version counter the ingest processes poll to reload the set. No TTL: until a suppression is lifted.
SUPPRESSED_KEY = PREFIX + "suppressed"
SUPPRESSED_SALT_KEY = PREFIX + "suppressed:salt"
SUPPRESSED_VERSION_KEY = PREFIX + "suppressed:version"
# Hash: source account -> messages dropped because they carried a suppressed (erased) id, at ingest or by the drain;
# read by /health. No TTL: a running total since the Redis data began.
DROPPED_SUPPRESSED_KEY = PREFIX + "dropped:suppressed"
# Hash: "<account>|<reason>" -> identity links the drain refused (reason: identified, linked, cap; store/identity.py);
# read by /health. No TTL: a running total since the Redis data began.
LINKS_REFUSED_KEY = PREFIX + "refused:links"
