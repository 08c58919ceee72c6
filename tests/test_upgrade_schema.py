"""The consolidated migrations build the schema the 1.2 development's chain built, from nothing and from 1.1.1.

Release 1.1.1 shipped migrations 0001-0003 (tests/fixtures/migrations_1_1_1/, from c2545bb); the 1.2 development
added 0030-0114 (tests/fixtures/migrations_1_2_development/, as main had them before the consolidation), which 1.2.0
replaces by 0100_schema_1_2.sql and 0101_events_indexes.py. The schemas are compared through the catalog (tables,
columns with their types, defaults, nullability and collations, indexes, constraints, functions, sequences), names
included and order left out; the one object the consolidation adds is the backfill state table, and the one it
leaves out is the old chain's unbounded identity function, which no release called.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from yoyo import get_backend, read_migrations

from nself_analytics.host.migrate import migrations_dir
from nself_analytics.store import online_ddl

from .conftest import drop_databases, pg_execute
from .log_support import capture_logs

FIXTURES = Path(__file__).parent / "fixtures"
OLD_CHAIN = FIXTURES / "migrations_1_2_development"
RELEASE_1_1_1 = FIXTURES / "migrations_1_1_1"
MIGRATION_TABLE = "np_analytics_yoyo_migration"  # nself_analytics/host/migrate.py's
ADDED = {("table", "np_analytics_backfills")}
# the old chain's unbounded identity linking (0030), replaced by the two-argument np_analytics_link_ids (0113) that the
# drain calls; no release ever called it, so 1.2.0 does not create it
DROPPED = {("function", "np_analytics_link_ids(ops jsonb)")}
CONSOLIDATED = ["0100_schema_1_2", "0101_events_indexes"]
# the migrations added after the consolidation (0102 on, each depending on 0101 only): applied after CONSOLIDATED
LATER = sorted(p.stem for p in migrations_dir().iterdir() if p.suffix in (".sql", ".py") and int(p.stem[:4]) > 101)

CATALOG = {
    "table": """
        SELECT c.relname, c.relkind::text || coalesce(' ' || pg_get_partkeydef(c.oid), '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition""",
    "column": """
        SELECT c.relname || '.' || a.attname,
               concat_ws(' ', rank() OVER (PARTITION BY c.oid ORDER BY a.attnum), format_type(a.atttypid, a.atttypmod),
                         CASE WHEN a.attnotnull THEN 'NOT NULL' END, 'COLLATE ' || nullif(co.collname, 'default'),
                         'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0
          AND NOT a.attisdropped""",
    "index": """
        SELECT c.relname, pg_get_indexdef(c.oid) || CASE WHEN x.indisvalid THEN '' ELSE ' INVALID' END
        FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT t.relispartition""",
    "constraint": """
        SELECT t.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND NOT t.relispartition""",
    "function": """
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'""",
    "sequence": """
        SELECT c.relname, s.seqtypid::regtype::text || ' ' || s.seqstart || ' ' || s.seqincrement
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid""",
}


def catalog(database_url: str) -> dict[tuple[str, str], str]:
    """Every schema object of the database but yoyo's own tables: (kind, name) -> its definition."""
    found: dict[tuple[str, str], str] = {}
    for kind, query in CATALOG.items():
        for name, definition in pg_execute(database_url, query):
            if "yoyo" not in name:
                found[(kind, name)] = definition
    return found


def owned_by(objects: dict[tuple[str, str], str], table: str) -> set[tuple[str, str]]:
    return {key for key in objects if key[1] == table or key[1].startswith(table + ".")
            or (key[0] in ("index", "sequence") and key[1].startswith(table + "_"))}


def sibling(database_url: str, name: str) -> str:
    """A fresh, empty database ``name`` on the test server; its URL."""
    pg_execute(database_url, f'DROP DATABASE IF EXISTS "{name}"')
    pg_execute(database_url, f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))


def migrate(database_url: str, directory: Path) -> list[str]:
    """Apply ``directory``'s pending migrations as ``build`` does (same yoyo table); return their ids."""
    backend = get_backend(database_url, migration_table=MIGRATION_TABLE)
    try:
        with backend.lock():
            pending = backend.to_apply(read_migrations(str(directory)))
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()


def test_fixtures_are_the_released_and_the_replaced_files() -> None:
    """1.1.1's files are unchanged in migrations/ and in both fixtures; the replaced ones are only in the fixture."""
    released = sorted(p.name for p in RELEASE_1_1_1.glob("*.sql"))
    assert released == ["0001_initial.sql", "0002_activity.sql", "0003_event_ts_covering.sql"]
    for name in released:
        text = (RELEASE_1_1_1 / name).read_text()
        assert (migrations_dir() / name).read_text() == text == (OLD_CHAIN / name).read_text()
    current = sorted(p.name for p in migrations_dir().iterdir() if p.suffix in (".sql", ".py"))
    assert current[:5] == [*released, "0100_schema_1_2.sql", "0101_events_indexes.py"]
    assert [name.rsplit(".", 1)[0] for name in current[5:]] == LATER
    assert len(list(OLD_CHAIN.glob("*.sql"))) == 3 + 17


def consolidated_only(directory: Path) -> Path:
    """``directory`` holding migrations/ up to 0101 (what the consolidation replaced the old chain by)."""
    directory.mkdir()
    for path in migrations_dir().iterdir():
        if path.suffix in (".sql", ".py") and int(path.stem[:4]) <= 101:
            (directory / path.name).write_bytes(path.read_bytes())
    return directory


def test_consolidated_chain_builds_the_old_chains_schema(stores: Any, tmp_path: Path) -> None:
    old = sibling(stores.database_url, "schema_old_chain")
    new = sibling(stores.database_url, "schema_new_chain")
    assert len(migrate(old, OLD_CHAIN)) == 20
    assert migrate(new, consolidated_only(tmp_path / "migrations")) == [
        "0001_initial", "0002_activity", "0003_event_ts_covering", "0100_schema_1_2", "0101_events_indexes"]
    before, after = catalog(old), catalog(new)
    assert ("index", "np_analytics_events_distinct_idx") in before  # the comparison sees the events' indexes
    assert set(after) - set(before) == owned_by(after, "np_analytics_backfills") and ADDED <= set(after)
    assert set(before) - set(after) == DROPPED
    assert {key: after[key] for key in before if key not in DROPPED} == {
        key: definition for key, definition in before.items() if key not in DROPPED}
    # a fresh database has nothing to backfill
    assert pg_execute(new, "SELECT name, lo, finished_at IS NOT NULL FROM np_analytics_backfills") == [
        ("rollups_1_2", None, True)]


def _partition(database_url: str, day: datetime) -> str:
    name = f"np_analytics_events_p{day:%Y%m%d}"
    pg_execute(database_url, f"CREATE TABLE {name} PARTITION OF np_analytics_events "
                             f"FOR VALUES FROM ('{day:%Y-%m-%d}') TO ('{day + timedelta(days=1):%Y-%m-%d}')")
    return name


def test_release_1_1_1_with_events_upgrades_to_the_same_schema(stores: Any) -> None:
    """A 1.1.1 database with three days of events: the upgrade builds each new index once per partition (attached
    to an ON ONLY parent, valid), drops the replaced ones, seeds the recent message ids and registers the backfill."""
    fresh = sibling(stores.database_url, "schema_fresh")
    migrate(fresh, migrations_dir())
    db = sibling(stores.database_url, "schema_from_1_1_1")
    assert migrate(db, RELEASE_1_1_1) == ["0001_initial", "0002_activity", "0003_event_ts_covering"]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=d) for d in (5, 1, 0)]
    partitions = [_partition(db, day) for day in days]
    pg_execute(db, """
        INSERT INTO np_analytics_events (ts, message_id, source_account_id, event, user_id, anonymous_id, site)
        SELECT d + n * interval '3 minutes', gen_random_uuid(), CASE WHEN mod(n, 7) = 0 THEN 'b' ELSE 'a' END,
               'e' || mod(n, 5), CASE WHEN mod(n, 3) = 0 THEN 'u' || mod(n, 40) END, 'anon' || mod(n, 90), 'example.com'
        FROM unnest(%s::timestamptz[]) AS d, generate_series(0, 479) AS n
        WHERE d + n * interval '3 minutes' < now()""", (days,))
    (stored,) = pg_execute(db, "SELECT count(*) FROM np_analytics_events")[0]
    assert migrate(db, migrations_dir()) == [*CONSOLIDATED, *LATER]
    upgraded, expected = catalog(db), catalog(fresh)
    assert upgraded == expected
    # every partition has each new index once, attached to the parent's; the replaced indexes are gone
    rows = pg_execute(db, """
        SELECT t.relname, p.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid JOIN pg_inherits ih ON ih.inhrelid = c.oid
        JOIN pg_class p ON p.oid = ih.inhparent WHERE t.relispartition""")
    # (0118 replaced the parent's (account, event, ts) index by (account, event), and gave the open days, those of
    # the last two days, their own time-ordered index)
    assert sorted(rows) == sorted((name, parent) for name in partitions for parent in (
        "np_analytics_events_distinct_idx", "np_analytics_events_event_idx", "np_analytics_events_site_ts_idx"))
    local = pg_execute(db, """
        SELECT t.relname, c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relispartition AND NOT EXISTS (SELECT 1 FROM pg_inherits ih WHERE ih.inhrelid = c.oid)""")
    assert sorted(local) == [(name, f"{name}_event_ts_open") for name in sorted(partitions[1:])]
    # the ids of the last two days' events are remembered, the older ones are not
    (seeded, recent) = pg_execute(db, """
        SELECT (SELECT count(*) FROM np_analytics_message_ids),
               (SELECT count(*) FROM np_analytics_events WHERE ts >= now() - interval '2 days')""")[0]
    assert seeded == recent and 0 < recent < stored
    # the backfill starts at the oldest partition and has not begun
    assert pg_execute(db, "SELECT lo, position, finished_at FROM np_analytics_backfills") == [(days[0], None, None)]
    # idempotent: nothing pending, nothing changed
    assert migrate(db, migrations_dir()) == []
    assert catalog(db) == expected


def test_interrupted_index_build_resumes(stores: Any) -> None:
    """A build killed after some partitions (one left INVALID, as a cancelled CONCURRENTLY build leaves it)
    completes on the next run, building only what is missing."""
    db = sibling(stores.database_url, "schema_resume")
    migrate(db, RELEASE_1_1_1)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    partitions = [_partition(db, today - timedelta(days=d)) for d in (2, 1, 0)]
    pg_execute(db, "INSERT INTO np_analytics_events (ts, message_id, event, user_id) "
                   "SELECT now() - n * interval '1 minute', gen_random_uuid(), 'e', 'u' FROM generate_series(1, 50) n")
    # what an interrupted 0101 leaves: the parent index ON ONLY, one partition attached, one invalid index
    pg_execute(db, "CREATE INDEX np_analytics_events_event_ts_idx ON ONLY np_analytics_events "
                   "(source_account_id, event, ts)")
    pg_execute(db, f"CREATE INDEX {partitions[2]}_event_ts_idx ON {partitions[2]} (source_account_id, event, ts)")
    pg_execute(db, f"ALTER INDEX np_analytics_events_event_ts_idx ATTACH PARTITION {partitions[2]}_event_ts_idx")
    pg_execute(db, f"CREATE INDEX {partitions[1]}_event_ts_idx ON {partitions[1]} (source_account_id, event, ts)")
    pg_execute(db, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
               (f"{partitions[1]}_event_ts_idx",))
    migrate(db, migrations_dir())
    fresh = sibling(stores.database_url, "schema_resume_fresh")
    migrate(fresh, migrations_dir())
    assert catalog(db) == catalog(fresh)
    invalid = pg_execute(db, "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
    assert invalid == []


def test_a_locking_statement_gives_way_to_a_long_reader(stores: Any) -> None:
    """A drop behind a reader's open transaction waits 500 ms at a time (never queued in front of the writers for
    longer: its lock_timeout), retries, and goes through once the reader is done."""
    db = sibling(stores.database_url, "schema_lock_wait")
    migrate(db, RELEASE_1_1_1)
    _partition(db, datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    reader = psycopg2.connect(db)
    ddl = psycopg2.connect(db)
    ddl.autocommit = True
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM np_analytics_events")  # holds ACCESS SHARE until it ends
        done = threading.Timer(5.0, reader.rollback)  # long enough that the drop meets it on a loaded machine
        done.start()
        with capture_logs() as logs:
            online_ddl.drop_events_index(ddl, "np_analytics_events_message_idx")
        done.join()
        busy = [entry["attempt"] for entry in logs if entry["event"] == "ddl_lock_busy"]
        assert busy and busy == list(range(1, len(busy) + 1))
        assert pg_execute(db, "SELECT to_regclass('np_analytics_events_message_idx')") == [(None,)]
    finally:
        reader.close()
        ddl.close()


@pytest.fixture(autouse=True)
def _drop_siblings(stores: Any) -> Any:
    yield
    drop_databases(stores, "schema_old_chain", "schema_new_chain", "schema_fresh", "schema_from_1_1_1",
                   "schema_resume", "schema_resume_fresh", "schema_lock_wait")
