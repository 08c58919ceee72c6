"""GET /export: every stored event of a date range, and the identified users first seen in it, as NDJSON
(``model.ndjson``'s shape: what ``nself-analytics import`` and the ingest API read back).

Token only (its Route; a site token is refused); the request's account. ``start_date`` and ``end_date`` are
required (days of ``tz``, default UTC) and span at most the retention window. Gzip when the client sends
``Accept-Encoding: gzip`` or ``?gzip=1``. Streamed in constant memory from server-side cursors (store/export.py),
one read snapshot. A failure after the first byte ends the connection without the final chunk, so a client never
mistakes a cut export for a whole one.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec
import structlog
from aiohttp import web
from aiohttp.web import ContentCoding

from ..model.ndjson import encode_line
from ..store.export import export_lines
from ..web import params
from ..web.appkeys import SETTINGS
from ..web.pools import reading
from ..web.read_params import DateParams, Day, zoned
from ..web.routing import TOKEN, Body, Route

__all__ = ["ROUTES"]

log = structlog.get_logger("nself_analytics.export")
FLUSH_BYTES = 64 * 1024  # lines are written to the response in pieces of about this size
_DATE = Annotated[Day, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class ExportParams(DateParams, kw_only=True):
    """Both dates are required (a whole export is asked for, never a default range)."""

    start_date: Annotated[_DATE, msgspec.Meta(description="First day (of tz, inclusive)")]
    end_date: Annotated[_DATE, msgspec.Meta(description=(
        "Last day (of tz, inclusive); the range spans at most the retention window"))]
    gzip: Annotated[Literal["0", "1"], msgspec.Meta(description="1: gzip the body (as Accept-Encoding: gzip does)")
                    ] = "0"

    MESSAGES: ClassVar[dict[str, str]] = {
        **DateParams.MESSAGES, "start_date:missing": "start_date and end_date are required (YYYY-MM-DD)",
        "end_date:missing": "start_date and end_date are required (YYYY-MM-DD)"}


def _wants_gzip(request: web.Request, flag: str) -> bool:
    accepted = request.headers.get("Accept-Encoding", "")
    return flag == "1" or any(part.split(";")[0].strip() == "gzip" for part in accepted.split(","))


async def export(request: web.Request, query: ExportParams) -> web.StreamResponse:
    """Streamed in time order, gzip with `Accept-Encoding: gzip` or `gzip=1`. `nself-analytics import FILE` reads
    it back. The range spans at most the retention window."""
    account = params.account(request)
    settings = request.config_dict[SETTINGS]
    # the retention window's days, today included; days of tz
    dates, start, end = zoned(query, max_days=settings.retention_days + 1)
    gzip = _wants_gzip(request, query.gzip)
    response = web.StreamResponse(headers={
        "Content-Type": "application/x-ndjson; charset=utf-8",
        "Content-Disposition": f'attachment; filename="events-{account}-{dates.first}-{dates.last}.ndjson"'})
    if gzip:
        response.enable_compression(ContentCoding.gzip)
    timeout_ms = max(1, int(settings.background_timeout * 1000))
    lines = 0
    async with reading(request) as conn:
        source = export_lines(conn, account=account, start=start, end=end, timeout_ms=timeout_ms)
        try:
            first = await anext(source, None)  # errors before the first byte are JSON errors (503, ...)
        except BaseException:
            await source.aclose()
            raise
        await response.prepare(request)
        buffer = bytearray()
        try:
            line = first
            while line is not None:
                buffer += encode_line(line)
                lines += 1
                if len(buffer) >= FLUSH_BYTES:
                    await response.write(bytes(buffer))
                    buffer.clear()
                line = await anext(source, None)
            if buffer:
                await response.write(bytes(buffer))
        except Exception as exc:  # headers are sent: cut the connection instead of ending the body cleanly
            log.error("export_failed", account=account, lines=lines, error=str(exc).strip()[:300])
            await source.aclose()
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    log.info("exported", account=account, lines=lines, start=str(dates.first), end=str(dates.last), gzip=gzip)
    return response


ROUTES = [
    Route("GET", "/export", export, TOKEN, name="export", tags=("Explorer",), op_id="events_export",
          summary="Every stored event of a range as NDJSON (the import format)", params=ExportParams,
          answer=Body("application/x-ndjson", (
              "One JSON object per line: the ingest API's message (Segment names) with the original messageId, "
              "and `$stored` (account, device, browser, os, country, is_bot, ip_hash); identified users as "
              "identify lines"))),
]
