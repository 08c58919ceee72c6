"""The soak of issue 21 item 8 (bench/soak.py), in CI: for 60 seconds two accounts send valid traffic while a
client holding only a public write key throws every hostile case at the service (an alias chain, a flood of new
event names, other accounts' message ids, 100 webhooks at a receiver that never answers, poison entries, oversized
and malformed bodies). Every valid event is stored exactly once within 5 s of its 2xx, the valid account's webhook
is delivered, and /health reports the hostile load truthfully and stays healthy."""

from __future__ import annotations

import json
from pathlib import Path

from bench.soak import run_soak


def test_soak_keeps_other_accounts_exactly_once_and_on_time(tmp_path: Path) -> None:
    result = run_soak(60, 2, data_dir=tmp_path / "soak")
    print(json.dumps(result, indent=2))  # shown when an assertion fails
    assert result["valid_accepted"] > 1000, result
    assert result["exactly_once"], result
    assert result["late_over_5s"] == 0, result
    assert set(result["valid_statuses"]) == {202}, result
    # the valid account's webhook is delivered while 100 of the hostile account's hang
    assert result["webhook_valid_sent"] > 30, result
    assert result["webhook_valid_delivered"] >= result["webhook_valid_sent"] - 2, result
    # the public key's name flood was refused and counted; the chain ran into the cap, not the drain
    after = result["health_after"]
    assert sum(after["dropped_event_names"].values()) > 0, result
    assert result["hostile_person_map"]["ids"] < result["alias_chain_links_sent"], result
    # the refused links are reported: the chain's aliases are not dropped with the name flood (their fixed name
    # counts against no name limit), so the chain reaches ANALYTICS_MAX_IDS_PER_PERSON and its links are refused
    assert set(after["refused_links"]) == {"identified", "linked", "cap"}, result
    assert after["refused_links"]["cap"] > 0, result
    assert after["queue_depth"] == 0 and after["dead_letters"] > 0, result
    assert result["health_status_after"] == 200 and after["healthy"] is True, result
    assert set(result["health_statuses_during"]) == {200}, result
