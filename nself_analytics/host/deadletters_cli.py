"""``nself-analytics dead-letters list|replay|drop``: the operator's view of the dead-letter stream.

``list`` prints one JSON object a line (oldest first); ``replay`` puts entries back on the ingest stream for the
drain to try again (after a fix); ``drop`` deletes them. Both take dead-letter ids, or act on every entry (of
``--account`` when given). Uses the configured Redis, else the embedded one of the data folder.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping

from redis.exceptions import RedisError

from ..config import ConfigError, Settings
from ..pipeline import deadletters
from .app import redis_client
from .embedded import EmbeddedError
from .embedded_redis import EmbeddedRedis

__all__ = ["run"]


async def _act(url: str, action: str, ids: list[str], account: str | None, limit: int, payload_chars: int) -> None:
    client = redis_client(url)
    try:
        if action == "list":
            for letter in await deadletters.listing(client, limit=limit, account=account):
                sys.stdout.write(json.dumps(letter.as_dict(payload_chars)) + "\n")
            return
        count = await (deadletters.replay if action == "replay" else deadletters.drop)(
            client, ids=ids or None, account=account)
        sys.stdout.write(json.dumps({"replayed" if action == "replay" else "dropped": count}) + "\n")
    finally:
        await client.aclose()


def run(env: Mapping[str, str], action: str, *, ids: list[str], account: str | None, limit: int,
        payload_chars: int) -> int:
    """Run one dead-letter action; 0 on success, 2 when the configuration or Redis is unusable."""
    try:
        settings = Settings.from_env(env, persist_secrets=False)
    except ConfigError as exc:
        sys.stderr.write(f"nself-analytics: {exc}\n")
        return 2
    embedded = None
    url = settings.redis_url
    try:
        if url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            url = embedded.start()  # a no-op when the service's embedded Redis runs
        asyncio.run(_act(url, action, ids, account, limit, payload_chars))
    except (RedisError, OSError, EmbeddedError) as exc:
        sys.stderr.write(f"nself-analytics: Redis is unavailable: {exc}\n")
        return 2
    finally:
        if embedded is not None and embedded.started_here:
            embedded.stop()
    return 0
