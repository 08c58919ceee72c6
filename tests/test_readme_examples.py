"""Every ```sh block of the README marked ``<!-- tested: key,key -->`` runs as written, with curl, against a live
service (the test client's server on a local port): each request answers 2xx (curl --fail-with-body) with a JSON
object holding those keys. The ingest blocks run first; the queue is drained before the reads."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from .conftest import SECRET, WRITE_KEY

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- tested: ([A-Za-z_,]+) -->\n```sh\n(.*?)```", re.S)
# as written, but a 4xx/5xx fails the block, and each answer ends its line
PRELUDE = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; printf '\\n'; }\n"


def blocks() -> list[tuple[list[str], str]]:
    return [(keys.split(","), body) for keys, body in BLOCK.findall(README.read_text())]


async def run(block: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec("bash", "-c", PRELUDE + block, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_every_tested_readme_example_answers_as_documented(client: Any, drain: Any) -> None:
    found = blocks()
    assert len(found) >= 12  # ingest, product queries, web stats, people, webhooks, export
    text = "\n".join(body for _keys, body in found)
    for family in ("/analytics/track", "/analytics/identify", "/analytics/page", "/analytics/batch",
                   "/analytics/trends", "/analytics/funnel", "/analytics/retention", "/analytics/api/",
                   "/analytics/users", "/analytics/webhooks", "/analytics/export"):
        assert family in text, family
    env = {"PATH": "/usr/bin:/bin", "HOST": str(client.make_url("")).rstrip("/"), "KEY": WRITE_KEY, "TOKEN": SECRET}
    drained = False
    for keys, body in found:
        if not drained and "Bearer $TOKEN" in body:
            await drain()  # what the background drain does: the reads see the examples' events
            drained = True
        code, out, err = await run(body, env)
        assert code == 0, (body, out, err)
        answers = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert answers, body
        for answer in answers:
            assert isinstance(answer, dict) and set(keys) <= answer.keys(), (body, answer)
            assert answer.get("status") in ("success", "ok", None), answer
        if "api/pages?" in body and "referrer=google.com" in body:
            # the session that came from Google: every page of it, not only its landing page
            assert {row["path"] for row in answers[0]["data"]} == {"/pricing", "/checkout"}, answers
        if "api/pageviews?" in body:
            assert answers[0]["data"]["sessions"] == 1 and answers[0]["meta"]["tz"] == "Europe/Berlin", answers


def test_the_readme_blocks_use_only_the_documented_variables() -> None:
    # every marker is followed by its block (a marker the pattern misses would leave its example untested)
    assert README.read_text().count("<!-- tested:") == len(blocks())
    for _keys, body in blocks():
        assert set(re.findall(r"\$(\w+)", body)) <= {"HOST", "KEY", "TOKEN"}, body
