"""A notification's message from its payload, for every channel: ``title``, ``summary``, ``facts`` (label and
value pairs), ``sections`` (a report's tables: ``title`` and ``rows`` of cells), ``link`` and ``chart`` (``values``
and ``bounds``) give a subject, a plain text, an HTML body that
mail clients render (inline styles, tables, no script, no external image: the chart is attached inline as
``cid:chart``) and the chart's PNG."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from .png import line_chart

__all__ = ["Rendered", "render"]

MAX_FACTS = 20
MAX_POINTS = 200
MAX_SECTIONS = 10
MAX_ROWS = 20


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    png: bytes | None


def _clean(value: object, limit: int = 300) -> str:
    text = "" if value is None else str(value)
    return "".join(c if c.isprintable() else " " for c in text)[:limit]


def _section(name: str, rows: list[list[str]]) -> str:
    cells = "".join("<tr>" + "".join(f'<td style="padding:2px 12px 2px 0;border-bottom:1px solid #e2e8f0">'
                                     f"{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return (f'<h3 style="font-size:15px;margin:16px 0 4px">{escape(name)}</h3>'
            f'<table style="border-collapse:collapse;font-size:14px">{cells or "<tr><td>(none)</td></tr>"}</table>')


def render(payload: dict[str, Any]) -> Rendered:
    title = _clean(payload.get("title"), 200) or "nself-analytics"
    summary = _clean(payload.get("summary"), 1000)
    facts = [(_clean(k, 60), _clean(v, 200)) for k, v in list(payload.get("facts") or [])[:MAX_FACTS]]
    link = _clean(payload.get("link"), 2000)
    sections = [(_clean(s.get("title"), 100), [[_clean(c, 200) for c in list(row)[:4]]
                                                for row in list(s.get("rows") or [])[:MAX_ROWS]])
                for s in list(payload.get("sections") or [])[:MAX_SECTIONS] if isinstance(s, dict)]
    lines = [title, summary, *(f"{k}: {v}" for k, v in facts)]
    for name, rows in sections:
        lines += ["", name, *("  " + " - ".join(row) for row in rows)] if rows else ["", name, "  (none)"]
    if link:
        lines.append(link)
    text = "\n".join(line for line in lines if line)
    chart = payload.get("chart") or {}
    values = [None if v is None else float(v) for v in list(chart.get("values") or [])[-MAX_POINTS:]]
    bounds = [float(b) for b in list(chart.get("bounds") or [])[:4] if b is not None]
    png = line_chart(values, bounds) if values else None
    fact_rows = "".join(f'<tr><td style="padding:2px 12px 2px 0;color:#64748b">{escape(k)}</td>'
                        f'<td style="padding:2px 0;color:#0f172a">{escape(v)}</td></tr>' for k, v in facts)
    image = '<p><img src="cid:chart" alt="chart" width="480" height="160" style="border:1px solid #e2e8f0"></p>' \
        if png else ""
    anchor = f'<p><a href="{escape(link, quote=True)}" style="color:#2563eb">Open the dashboard</a></p>' \
        if link.startswith(("http://", "https://")) else (f"<p>{escape(link)}</p>" if link else "")
    tables = "".join(_section(name, cells) for name, cells in sections)
    html = ('<!doctype html><html><body style="font-family:Helvetica,Arial,sans-serif;color:#0f172a">'
            f'<h2 style="font-size:18px;margin:0 0 8px">{escape(title)}</h2>'
            f'<p style="margin:0 0 8px">{escape(summary)}</p>'
            f'<table style="border-collapse:collapse;font-size:14px">{fact_rows}</table>{image}{tables}{anchor}'
            '</body></html>')
    return Rendered(subject=title, text=text, html=html, png=png)
