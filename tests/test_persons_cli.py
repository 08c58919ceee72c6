"""``nself-analytics persons erase|export|suppressions`` (issue 25 item 5): the same export as the HTTP API, an
erasure run to its end by the command (no trace left, later events dropped), the suppression list and its lifting,
all straight on the stores; bad input and unreachable stores are exit code 2 and one line."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from nself_analytics.host.cli import main
from nself_analytics.ingest.suppressed import shared
from nself_analytics.web.appkeys import ANALYTICS_APP, REDIS

from .conftest import pg_execute
from .test_erasure import ALICE, ANON, _drainer, _messages, _run_jobs, _send, _traces, uuid_quote


def _stores_env(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["persons", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_export_erase_and_lift_from_the_command_line(client: Any, auth: Any, settings: Any, clean: Any,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    await _send(client, auth, "primary", _messages(with_alice=True))
    await _drainer(client, settings).drain_until_empty()
    _stores_env(monkeypatch, settings, tmp_path)

    # export: the HTTP API's lines, byte for byte
    output = tmp_path / "alice.ndjson"
    code, _out, err = await _cli(capsys, "export", ANON, "--output", str(output))
    assert code == 0, err
    http = await client.get(f"/analytics/persons/{uuid_quote(ANON)}/export", headers=auth["secret"])
    assert output.read_bytes() == await http.read()
    lines = [json.loads(line) for line in output.read_bytes().splitlines()]
    assert sorted(line["event"] for line in lines if line["type"] == "track") == ["purchase", "purchase", "signup"]
    assert f'"exported": {len(lines)}' in err

    # erase: the command runs the job to its end (the id trimmed as ingest does)
    code, out, err = await _cli(capsys, "erase", f"  {ALICE} ")
    assert code == 0, err
    report = json.loads(out)
    assert report["state"] == "done" and report["known"] is True and report["counts"]["ids"] == 2, report
    assert report["counts"]["events"] == 5 and report["requested_by"].startswith("cli")
    assert ALICE not in out and ANON not in out
    assert _traces(settings.database_url, settings.redis_url, [ALICE, ANON, "alice@example.com"]) == []
    actions = pg_execute(settings.database_url, "SELECT actor LIKE 'cli%%', action FROM np_analytics_audit ORDER BY id")
    assert actions == [(True, "erase_requested"), (True, "erase_completed")]
    # the suppression holds: a later event of the person is dropped
    await _send(client, auth, "primary", [{"type": "track", "userId": ALICE, "event": "late",
                                           "messageId": str(uuid.uuid4())}])
    await _drainer(client, settings).drain_until_empty()
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_events WHERE event = 'late'") == [(0,)]

    code, out, err = await _cli(capsys, "suppressions")
    assert code == 0, err
    listing = json.loads(out)
    assert listing["total"] == 2 and len(listing["data"]) == 2 and ALICE not in out and ANON not in out
    code, out, err = await _cli(capsys, "suppressions", "--lift", ALICE)
    assert (code, json.loads(out)) == (0, {"lifted": True}), err
    code, out, err = await _cli(capsys, "suppressions", "--lift", ALICE)
    assert code == 1 and out == "" and err.strip().endswith("this id is not suppressed")
    code, out, _err = await _cli(capsys, "suppressions", "--limit", "1", "--offset", "0")
    assert json.loads(out)["total"] == 1 and len(json.loads(out)["data"]) == 1
    await shared(client.app[ANALYTICS_APP][REDIS]).refresh(force=True)  # what each process does within a second
    await _send(client, auth, "primary", [{"type": "track", "userId": ALICE, "event": "again",
                                           "messageId": str(uuid.uuid4())}])
    await _drainer(client, settings).drain_until_empty()
    assert pg_execute(settings.database_url, "SELECT user_id FROM np_analytics_events WHERE event = 'again'") == [
        (ALICE,)]


async def test_erase_no_wait_queues_the_job_for_the_service(client: Any, settings: Any, clean: Any,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _stores_env(monkeypatch, settings, tmp_path)
    code, out, err = await _cli(capsys, "erase", "ghost", "--no-wait", "--account", "acct-2")
    assert code == 0, err
    report = json.loads(out)
    assert report["state"] == "pending" and report["known"] is False
    await _run_jobs(client, settings)  # the leader's loop
    rows = pg_execute(settings.database_url, "SELECT source_account_id, state FROM np_analytics_erasures")
    assert rows == [("acct-2", "done")]
    code, out, _err = await _cli(capsys, "suppressions", "--account", "acct-2")
    assert json.loads(out)["total"] == 1
    code, out, _err = await _cli(capsys, "suppressions")
    assert json.loads(out)["total"] == 0  # another account's list


@pytest.mark.parametrize(("argv", "says"), [
    (["erase", ""], "distinct_id must be 1-255 characters"),
    (["erase", "   "], "distinct_id must be 1-255 characters"),
    (["erase", "x" * 256], "distinct_id must be 1-255 characters"),
    (["export", "a\x00b"], "distinct_id must be 1-255 characters"),
    (["suppressions", "--lift", ""], "distinct_id must be 1-255 characters"),
    (["erase", "u1", "--account", "bad account"], "--account: use 1-64 letters"),
    (["suppressions", "--limit", "0"], "--limit: must be an integer between 1 and 1000"),
    (["suppressions", "--limit", "ten"], "--limit: must be an integer between 1 and 1000"),
    (["suppressions", "--offset", "-1"], "--offset: must be an integer between 0 and 1000000"),
    (["forget", "u1"], "invalid choice: 'forget'"),
    (["erase"], "the following arguments are required: id"),
    ([], "the following arguments are required"),
    (["erase", "u1"], "persons erase failed"),
    (["export", "u1"], "persons export failed"),
    (["suppressions"], "persons suppressions failed"),
    (["suppressions", "--lift", "u1"], "persons suppressions failed"),
])
async def test_bad_input_and_unreachable_stores_are_one_line_and_exit_2(
        argv: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:x@127.0.0.1:1/none?connect_timeout=2")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    code = await asyncio.to_thread(_exit_code, ["persons", *argv])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert says in captured.err and "Traceback" not in captured.err, captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's refusals
        return int(exc.code or 0)


def test_help_names_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["persons", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(action in text for action in ("erase", "export", "suppressions"))
    assert _exit_code(["persons", "suppressions", "--help"]) == 0
    assert "--lift ID" in capsys.readouterr().out
