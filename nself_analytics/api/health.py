"""GET /health: up/down of Postgres and Redis for anyone; with a token serving every account, also the version,
queue depth, aggregate lag and the stores' error text (which can name hosts, users and paths)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web

from ..auth import grant_of
from ..keys import DRAIN_GROUP, PG_POOL, REDIS, STREAM_KEY
from ..store.aggregates import aggregate_lag_seconds
from ..worker import WORKER

routes = web.RouteTableDef()

VERSION = "1.1.1"


async def _postgres(request: web.Request) -> dict[str, Any]:
    try:
        async with asyncio.timeout(3):
            async with request.config_dict[PG_POOL].acquire() as conn:
                lag = await aggregate_lag_seconds(conn)
        return {"postgres": {"reachable": True}, "aggregate_lag_seconds": round(lag, 3)}
    except Exception as exc:
        return {"postgres": {"reachable": False, "error": str(exc).strip()[:200] or type(exc).__name__},
                "aggregate_lag_seconds": None}


async def _redis(request: web.Request) -> dict[str, Any]:
    client = request.config_dict[REDIS]
    try:
        async with asyncio.timeout(3):
            async with client.pipeline(transaction=False) as pipe:
                pipe.ping()
                pipe.xlen(STREAM_KEY)
                _ping, depth = await pipe.execute()
            pending = 0
            try:
                summary = await client.xpending(STREAM_KEY, DRAIN_GROUP)
                pending = int(summary.get("pending", 0))
            except Exception:  # no group yet: nothing pending
                pending = 0
        return {"redis": {"reachable": True}, "queue_depth": int(depth), "queue_pending": pending}
    except Exception as exc:
        return {"redis": {"reachable": False, "error": str(exc).strip()[:200] or type(exc).__name__},
                "queue_depth": None, "queue_pending": None}


def _process(request: web.Request) -> dict[str, Any]:
    """This process (one of ANALYTICS_WORKERS) and whether it holds the leader lock (runs the aggregator)."""
    worker = request.config_dict.get(WORKER)  # none in an app built without the background task
    return {"process": {"pid": os.getpid(), "leader": bool(worker and worker.leadership.held)}}


@routes.get("/health", name="health")
async def health(request: web.Request) -> web.Response:
    pg, rd = await asyncio.gather(_postgres(request), _redis(request))
    ok = pg["postgres"]["reachable"] and rd["redis"]["reachable"]
    body: dict[str, Any] = {"status": "success" if ok else "error", "healthy": ok}
    grant = grant_of(request)
    if grant is not None and grant.role == "token" and grant.account is None:
        body.update(version=VERSION, **pg, **rd, **_process(request))
    else:
        body.update(postgres={"reachable": pg["postgres"]["reachable"]}, redis={"reachable": rd["redis"]["reachable"]})
    if not ok:
        body["message"] = "a store is unreachable"
    return web.json_response(body, status=200 if ok else 503)
