"""The route list of plugin.yaml, generated from the route table (``api.ROUTES`` under the mount, and the root
app's ``ROOT_ROUTES``). ``python -m nself_analytics.host.manifest`` rewrites the ``routes:`` block of plugin.yaml;
tests/test_checkout_tools.py fails when the file and the table differ."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from .. import api
from ..web.access import Access
from ..web.routing import Route
from .app import MOUNT, ROOT_ROUTES

__all__ = ["render_routes", "write_manifest"]

PLUGIN_YAML = Path(__file__).resolve().parent.parent.parent / "plugin.yaml"
HEADER = "routes:  # every route of the router, HEAD aside: generated from the route table (api/__init__.py ROUTES)"
AUTH = {Access.PUBLIC: "none", Access.WRITE: "write key", Access.TOKEN: "secret token",
        Access.SITE: "secret token, or a site token of that site"}


def _quoted(path: str) -> str:
    return f'"{path}"' if "{" in path else path


def render_routes(routes: Iterable[Route] = api.ROUTES, root: Iterable[Route] = ROOT_ROUTES) -> str:
    """The ``routes:`` block of plugin.yaml: one line per path, its methods and what each needs."""
    by_path: dict[str, list[Route]] = {}
    for route in root:
        by_path.setdefault(route.key[1], []).append(route)
    for route in routes:
        by_path.setdefault(MOUNT + route.key[1], []).append(route)
    lines = [HEADER]
    for path, declared in by_path.items():
        methods = ", ".join(route.method if route.method != "*" else '"*"' for route in declared)
        first = declared[0]
        auth = AUTH[first.access] + (f" ({first.note})" if first.note else "")
        for other in declared[1:]:
            if other.access is not first.access or other.note != first.note:
                auth += f"; {other.method}: {AUTH[other.access]}" + (f" ({other.note})" if other.note else "")
        lines.append(f'  - {{path: {_quoted(path)}, methods: [{methods}], auth: "{auth}"}}')
    return "\n".join(lines) + "\n"


def write_manifest(path: Path = PLUGIN_YAML) -> bool:
    """Replace the ``routes:`` block of ``path`` (up to the next top-level key or the end); True if it changed."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("routes:"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in (" ", "\n", "#")), len(lines))
    new = "".join(lines[:start]) + render_routes() + "".join(lines[end:])
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    print("plugin.yaml: routes updated" if write_manifest() else "plugin.yaml: routes unchanged")
    sys.exit(0)
