"""The package's layout rules, checked on the source with ``ast`` (no database, no import of the package).

docs/architecture.md draws the layers. Each top-level package (or the module config) is a layer, and a layer
imports only the layers listed for it in ALLOWED. Imports under ``if TYPE_CHECKING:`` and imports inside
functions count like any other: an import circle a type checker or a lazy import hides is still a circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = "nself_analytics"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 400

# layer -> the layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "config": {"model"},
    "store": {"model", "config"},
    "ingest": {"model", "config", "store"},
    "pipeline": {"model", "config", "store", "ingest"},
    "web": {"model", "config", "ingest"},
    "api": {"model", "config", "store", "ingest", "pipeline", "web"},
    "host": {"model", "config", "store", "ingest", "pipeline", "web", "api", "integrations"},
    "integrations": {"config"},  # they talk to the service over HTTP; config only for ConfigError
    "": set(),  # nself_analytics/__init__.py: the version only
}

# Modules sharing a file name in different layers: only an HTTP handler and the store module of one resource.
SAME_NAME_PAIRS = {
    frozenset({f"api/{name}.py", f"store/{name}.py"})
    for name in ("alerts", "campaigns", "event_names", "explorer", "export", "funnels", "metrics", "people",
                 "quotas", "retention", "scheduled_reports", "trends", "webhooks")
} | {frozenset({"api/posthog.py", "ingest/posthog.py"})}  # a wire format's handlers and its translator


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports (a ``from pkg import module`` names the module)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name.startswith(PACKAGE))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not (module == PACKAGE or module.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in MODULES else module)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_import_follows_the_layer_rules() -> None:
    # the package root holds the version only (it imports nothing): every layer may read it
    broken = [f"{src} -> {dst}" for src, dsts in GRAPH.items() for dst in sorted(dsts)
              if _layer(dst) not in (_layer(src), "") and _layer(dst) not in ALLOWED[_layer(src)]]
    assert broken == []


def test_every_layer_is_known_and_documented() -> None:
    layers = {_layer(name) for name in MODULES}
    assert layers <= set(ALLOWED)
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc and "import" in doc, f"{name}: its docstring must say what it owns and may import"


def test_no_import_circle() -> None:
    # Tarjan's strongly connected components: any component of more than one module is a circle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert circles == []


def test_no_module_over_the_line_limit() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_two_modules_share_a_name_across_layers() -> None:
    by_name: dict[str, set[str]] = defaultdict(set)
    for path in MODULES.values():
        if path.name != "__init__.py":
            by_name[path.name].add(path.relative_to(ROOT).as_posix())
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert {name for name, paths in shared.items() if frozenset(paths) not in SAME_NAME_PAIRS} == set()
    # the allowed pairs exist (a renamed resource updates the list)
    assert {frozenset(paths) for paths in shared.values()} == SAME_NAME_PAIRS

