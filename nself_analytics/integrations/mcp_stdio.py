"""The MCP server's stdio transport: the SDK's ``stdio_server`` with every line checked before the SDK reads it.

The SDK drops a line it cannot decode as a JSON-RPC message without a word, so a client that sent one waits
forever. Here such a line is answered with a JSON-RPC error instead, written through the SDK's own stdout
writer, and not passed on: text that is not JSON gets a parse error (-32700, id null); JSON that is not a
JSON-RPC message an invalid request (-32600, with its id when it has a valid one); a request holding a lone
surrogate (``"\\ud800"``: valid JSON, not Unicode text) invalid params (-32602) or an invalid request.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from io import TextIOWrapper
from typing import Any, cast

import anyio
import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

__all__ = ["check_line", "serve_stdio"]


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _error(ident: Any, code: int, message: str) -> types.JSONRPCError:
    valid = (isinstance(ident, int) and not isinstance(ident, bool)) or (
        isinstance(ident, str) and not _has_lone_surrogate(ident))
    return types.JSONRPCError(jsonrpc="2.0", id=ident if valid else None,
                              error=types.ErrorData(code=code, message=message))


def check_line(line: str) -> types.JSONRPCError | None:
    """None when the SDK can take ``line``; else the JSON-RPC error that answers it."""
    try:
        message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError:
        pass
    else:
        # a request whose id is not a string or a number (true, {}) passes as a notification: nobody answers
        if not isinstance(message, types.JSONRPCNotification) or '"id"' not in line:
            return None
        value = json.loads(line)
        if not isinstance(value, dict) or "id" not in value:
            return None
        return _error(None, types.INVALID_REQUEST, "Invalid request: an id is a string or a number")
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return _error(None, types.PARSE_ERROR, "Parse error: the line is not JSON")
    if not isinstance(value, dict):
        return _error(None, types.INVALID_REQUEST, "Invalid request: a message is one JSON-RPC 2.0 object")
    ident = value.get("id")
    if _has_lone_surrogate(value):
        envelope = {k: v for k, v in value.items() if k != "params"}
        params_only = not _has_lone_surrogate(envelope)
        return _error(ident, types.INVALID_PARAMS if params_only else types.INVALID_REQUEST,
                      f"Invalid {'params' if params_only else 'request'}: a string holds a lone surrogate "
                      "(such as \\ud800), which is not Unicode text")
    return _error(ident, types.INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 request, notification or "
                                                "response")


async def serve_stdio(server: MCPServer) -> None:
    """Serve ``server`` over this process's stdin and stdout until stdin closes."""
    ready = anyio.Event()
    replies: list[Any] = []  # the SDK's write stream (a clone of it), once open

    async def checked(lines: AsyncIterator[str]) -> AsyncIterator[str]:
        async for line in lines:
            if not line.strip():
                continue
            error = check_line(line)
            if error is None:
                yield line
                continue
            await ready.wait()
            await replies[0].send(SessionMessage(error))

    stdin = anyio.wrap_file(TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
    # the SDK only iterates its stdin: an async iterator of lines serves as well as an anyio file
    filtered = checked(cast(AsyncIterator[str], stdin))  # anyio's file iterates its lines
    async with stdio_server(stdin=cast(Any, filtered)) as (read_stream, write_stream):
        async with write_stream.clone() as reply_stream:
            replies.append(reply_stream)
            ready.set()
            lowlevel = server._lowlevel_server  # as MCPServer.run_stdio_async does
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
