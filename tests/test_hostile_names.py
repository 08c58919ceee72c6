"""An account cannot be exhausted through a public write key (issue 21 item 3): keys are declared ``public:`` or
``server:`` (bare: server; the generated key of an install: public); new event names a public key brings are
limited per account and day (ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY), so the junk_0..junk_1999 flood cannot fill
ANALYTICS_MAX_EVENT_NAMES; the token lists names (first source, volume, dropped), blocks one (dropped on every wire
format, counted in /health) and deletes one with its events (which frees the cap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nself_analytics.config import ConfigError, Settings
from nself_analytics.ingest.service import NAME_WARNINGS
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.pipeline.runtime import Worker
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .conftest import SECRET, WRITE_KEY, pg_execute

PUBLIC_KEY = "wk_public_page_key"
PUBLIC = {"Authorization": f"Bearer {PUBLIC_KEY}"}
SERVER = {"Authorization": f"Bearer {WRITE_KEY}"}
TOKEN = {"Authorization": f"Bearer {SECRET}"}


def test_key_kinds_parse() -> None:
    """public:/server: prefixes, with or without an account; bare entries are server keys; tokens take none."""
    keys = Settings(secret_token=SECRET, write_keys=("public:p1,server:s1,s2", "public:acme=p2,server:acme=s3"))
    kinds = {c.secret: (c.public, c.account) for c in keys.writers if c.role == "write"}
    assert kinds == {"p1": (True, None), "s1": (False, None), "s2": (False, None), "p2": (True, "acme"),
                     "s3": (False, "acme")}
    with pytest.raises(ConfigError):
        Settings.from_env({"ANALYTICS_SECRET_TOKEN": "public:" + SECRET, "ANALYTICS_WRITE_KEYS": "k"},
                          persist_secrets=False)


def test_generated_key_is_public(tmp_path: Path) -> None:
    """A fresh install's generated key ships in its pages: public; a bare key kept in secrets.env by an older
    release is public too; a key given in the environment keeps its own kind (bare: server)."""
    fresh = Settings.from_env({"ANALYTICS_DATA_DIR": str(tmp_path / "a")})
    assert [c.public for c in fresh.writers if c.role == "write"] == [True]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "secrets.env").write_text(f"ANALYTICS_SECRET_TOKEN={SECRET}\nANALYTICS_WRITE_KEYS=wk_old\n")
    old = Settings.from_env({"ANALYTICS_DATA_DIR": str(tmp_path / "b")})
    assert [(c.secret, c.public) for c in old.writers if c.role == "write"] == [("wk_old", True)]
    given = Settings.from_env({"ANALYTICS_DATA_DIR": str(tmp_path / "c"), "ANALYTICS_SECRET_TOKEN": SECRET,
                               "ANALYTICS_WRITE_KEYS": "wk_env"})
    assert [c.public for c in given.writers if c.role == "write"] == [False]


@pytest.fixture
async def keyed(make_client: Any, settings: Settings) -> Any:
    return await make_client(settings.with_(write_keys=(WRITE_KEY, "public:" + PUBLIC_KEY)))


async def _drain(client: Any, settings: Settings) -> int:
    sub = client.app[ANALYTICS_APP]
    return await Drainer(sub[PG_POOL], sub[REDIS], settings).drain_until_empty()


def _stored(settings: Settings, where: str = "true") -> dict[str, int]:
    rows = pg_execute(settings.database_url, f"SELECT event, count(*) FROM np_analytics_events WHERE {where} "
                                             "GROUP BY event")
    return {event: int(count) for event, count in rows}


async def _health(client: Any) -> dict[str, Any]:
    return dict(await (await client.get("/analytics/health", headers=TOKEN)).json())


async def test_public_flood_cannot_fill_the_cap(keyed: Any, settings: Settings) -> None:
    """20 /batch requests of junk_0..junk_1999 through the public key: 50 new names a day get in, the other 1,950
    messages are refused with the public warning (Segment's /v1/batch answers 200 success for the same), and the
    account's server key still adds names; /health counts what was dropped."""
    for start in range(0, 2000, 100):
        body = {"batch": [{"type": "track", "event": f"junk_{n}", "userId": "flood"}
                          for n in range(start, start + 100)]}
        path = "/analytics/batch" if start % 200 == 0 else "/analytics/v1/batch"
        response = await keyed.post(path, headers=PUBLIC, json=body)
        assert response.status in (200, 202), await response.text()
        answer = await response.json()
        if path == "/analytics/batch":
            refused = [w["index"] for w in answer["warnings"] if w["message"] == NAME_WARNINGS["public_daily"]]
            assert refused == (list(range(50, 100)) if start == 0 else list(range(100)))
        else:
            assert answer == {"success": True}
    assert (await (await keyed.post("/analytics/track", headers=PUBLIC, json={"event": "junk_0", "userId": "x"})
                   ).json())["warnings"] == []  # a name already in use is not new
    server = await (await keyed.post("/analytics/track", headers=SERVER, json={"event": "purchase", "userId": "x"})
                    ).json()
    assert server["warnings"] == []
    assert await _drain(keyed, settings) == 52
    stored = _stored(settings)
    assert sorted(stored) == sorted([f"junk_{n}" for n in range(50)] + ["purchase"])
    assert (await _health(keyed))["dropped_event_names"] == {"cap": 0, "public_daily": 1950, "blocked": 0}
    listing = await (await keyed.get("/analytics/event-names", headers=TOKEN, params={"limit": 1000})).json()
    by_name = {row["name"]: row for row in listing["data"]}
    assert listing["total"] == 51
    assert by_name["purchase"]["first_source"] == "server" and by_name["junk_7"]["first_source"] == "public"
    assert by_name["junk_0"]["volume"] == 2 and by_name["purchase"]["volume"] == 1


async def test_message_kinds_fixed_names_pass_a_spent_allowance_and_a_full_cap(make_client: Any,
                                                                               settings: Settings) -> None:
    """Page, screen, identify, alias and group messages are stored under five fixed names: once a public key's
    flood has used the day's new names and the cap is full, those messages (and a track of the fixed name $pageview)
    still get in, are listed, and the flood's next new track name is still refused."""
    client = await make_client(settings.with_(write_keys=(WRITE_KEY, "public:" + PUBLIC_KEY), max_event_names=52,
                                              public_new_names_per_day=50))
    body = {"batch": [{"type": "track", "event": f"junk_{n}", "userId": "flood"} for n in range(60)]}
    answer = await (await client.post("/analytics/batch", headers=PUBLIC, json=body)).json()
    assert [w["index"] for w in answer["warnings"]] == list(range(50, 60))
    body = {"batch": [{"type": "track", "event": f"server_{n}", "userId": "s"} for n in range(3)]}
    answer = await (await client.post("/analytics/batch", headers=SERVER, json=body)).json()
    assert answer["warnings"] == [{"index": 2, "message": NAME_WARNINGS["cap"]}]  # the cap is full: 52 names
    kinds = [{"type": "page", "anonymousId": "a1", "properties": {"url": "https://example.com/"}},
             {"type": "screen", "anonymousId": "a1", "name": "Home"},
             {"type": "identify", "userId": "u1", "anonymousId": "a1"},
             {"type": "alias", "userId": "u2", "previousId": "u1"},
             {"type": "group", "userId": "u2", "groupId": "g1"},
             {"type": "track", "event": "$pageview", "anonymousId": "a2"},
             {"type": "track", "event": "junk_99", "userId": "flood"}]
    answer = await (await client.post("/analytics/batch", headers=PUBLIC, json={"batch": kinds})).json()
    assert answer["warnings"] == [{"index": 6, "message": NAME_WARNINGS["cap"]}]
    assert await _drain(client, settings) == 50 + 2 + 6
    assert _stored(settings, "event LIKE '$%'") == {"$pageview": 2, "$screen": 1, "$alias": 1, "$group": 1}
    assert pg_execute(settings.database_url, "SELECT user_id FROM np_analytics_users") == [("u1",)]  # the identify
    listing = await (await client.get("/analytics/event-names", headers=TOKEN, params={"limit": 1000})).json()
    assert {"$pageview", "$screen", "$alias", "$group"} <= {row["name"] for row in listing["data"]}
    health = (await _health(client))["dropped_event_names"]
    assert health == {"cap": 2, "public_daily": 10, "blocked": 0}


async def test_blocked_name_is_dropped_on_every_wire_format(keyed: Any, settings: Settings) -> None:
    """A blocked name is refused through /track, /batch, the Segment routes and either kind of key, counted per
    name and in /health; unblocking lets it in again."""
    assert (await keyed.post("/analytics/track", headers=SERVER, json={"event": "spam", "userId": "u"})).status == 202
    response = await keyed.post("/analytics/event-names/spam/block", headers=TOKEN)
    assert response.status == 200 and (await response.json())["blocked"] is True
    sends = [("/analytics/track", {"event": "spam", "userId": "u"}),
             ("/analytics/batch", {"batch": [{"type": "track", "event": "spam", "userId": "u"}]}),
             ("/analytics/v1/track", {"event": "spam", "userId": "u"}),
             ("/analytics/v1/t", {"event": "spam", "userId": "u"}),
             ("/analytics/v1/batch", {"batch": [{"type": "track", "event": "spam", "userId": "u"}]})]
    for headers in (SERVER, PUBLIC):
        for path, body in sends:
            response = await keyed.post(path, headers=headers, json=body)
            answer = await response.json()
            if path.startswith("/analytics/v1/"):
                assert (response.status, answer) == (200, {"success": True}), path
            elif path.endswith("/track"):
                assert answer["warnings"] == [NAME_WARNINGS["blocked"]]
            else:
                assert answer["warnings"] == [{"index": 0, "message": NAME_WARNINGS["blocked"]}]
    await _drain(keyed, settings)
    assert _stored(settings) == {"spam": 1}
    assert (await _health(keyed))["dropped_event_names"]["blocked"] == 10
    listing = await (await keyed.get("/analytics/event-names", headers=TOKEN)).json()
    [row] = [row for row in listing["data"] if row["name"] == "spam"]
    assert (row["blocked"], row["dropped"], row["volume"]) == (True, 10, 1)
    assert (await keyed.delete("/analytics/event-names/spam/block", headers=TOKEN)).status == 200
    assert (await (await keyed.post("/analytics/track", headers=PUBLIC, json={"event": "spam", "userId": "u"})
                   ).json())["warnings"] == []


async def test_deleted_name_frees_the_cap_and_its_events_go(make_client: Any, settings: Settings) -> None:
    """At ANALYTICS_MAX_EVENT_NAMES a new name is refused; deleting a name frees its place at once (it stays
    blocked until the leader's job has deleted its events in batches, then may come back); other names and
    accounts keep their events."""
    capped = settings.with_(max_event_names=3)
    client = await make_client(capped)
    other = {**SERVER, "X-Source-Account-Id": "other"}
    for name in ("a", "b", "c"):
        for _ in range(3):
            assert (await (await client.post("/analytics/track", headers=SERVER, json={"event": name, "userId": "u"})
                           ).json())["warnings"] == []
    await client.post("/analytics/track", headers=other, json={"event": "a", "userId": "u"})
    refused = await (await client.post("/analytics/track", headers=SERVER, json={"event": "d", "userId": "u"})).json()
    assert refused["warnings"] == [NAME_WARNINGS["cap"]]
    await _drain(client, capped)
    response = await client.delete("/analytics/event-names/a", headers=TOKEN)
    assert response.status == 202
    assert (await _health(client))["event_name_deletions"] == 1
    again = await (await client.post("/analytics/track", headers=SERVER, json={"event": "a", "userId": "u"})).json()
    assert again["warnings"] == [NAME_WARNINGS["blocked"]]  # blocked while its deletion runs
    assert (await (await client.post("/analytics/track", headers=SERVER, json={"event": "d", "userId": "u"})
                   ).json())["warnings"] == []  # its place is free
    sub = client.app[ANALYTICS_APP]
    worker = Worker(sub[PG_POOL], sub[REDIS], capped)
    assert await worker.delete_names() == 3
    await _drain(client, capped)
    assert _stored(capped, "source_account_id = 'primary'") == {"b": 3, "c": 3, "d": 1}
    assert _stored(capped, "source_account_id = 'other'") == {"a": 1}
    assert (await _health(client))["event_name_deletions"] == 0
    hours = pg_execute(capped.database_url, "SELECT count(*) FROM np_analytics_aggregate_dirty")
    assert hours[0][0] >= 1
    assert (await client.delete("/analytics/event-names/a", headers=TOKEN)).status == 404
    # the name is unblocked again: it comes back only when the cap has room (b, c, d hold it now)
    back = await (await client.post("/analytics/track", headers=SERVER, json={"event": "a", "userId": "u"})).json()
    assert back["warnings"] == [NAME_WARNINGS["cap"]]


async def test_event_name_routes_refuse_write_keys_and_bad_input(keyed: Any) -> None:
    for method, path in (("GET", "/analytics/event-names"), ("POST", "/analytics/event-names/x/block"),
                         ("DELETE", "/analytics/event-names/x/block"), ("DELETE", "/analytics/event-names/x")):
        for headers in (PUBLIC, SERVER):
            assert (await keyed.request(method, path, headers=headers)).status in (401, 403)
        assert (await keyed.request(method, path)).status == 401
    assert (await keyed.delete("/analytics/event-names/never-seen", headers=TOKEN)).status == 404
    assert (await keyed.delete("/analytics/event-names/never-seen/block", headers=TOKEN)).status == 404
    long = await keyed.post("/analytics/event-names/" + "x" * 201 + "/block", headers=TOKEN)
    assert long.status == 400 and (await long.json())["status"] == "error"
    assert (await keyed.get("/analytics/event-names", headers=TOKEN, params={"limit": "0"})).status == 400
