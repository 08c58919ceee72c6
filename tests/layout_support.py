"""What the dashboard's screenshot tests check on a page, read in the browser: nothing wider than the viewport,
no clipped label (a visible element whose content is wider than its box, unless it is ellipsized with a title
or is a declared horizontal scroller, ``data-scroll``), no text outside its box (HTML text beyond its block,
SVG text beyond its chart), and no empty panel (a visible "No data" cell or chart, a visible card whose table
has no row, an empty chart box)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Page

LAYOUT_PROBLEMS = r"""
() => {
  const problems = [], vw = document.documentElement.clientWidth;
  const visible = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().split(/\s+/).join('.') : '') +
    ' "' + (e.textContent || '').trim().slice(0, 40) + '"';
  const excused = e => !!e.closest('[data-scroll]') ||
    (getComputedStyle(e).textOverflow === 'ellipsis' && (e.title || e.closest('[title]')));
  if (document.documentElement.scrollWidth > vw) {
    problems.push('page wider than the viewport: ' + document.documentElement.scrollWidth + ' > ' + vw);
  }
  for (const e of document.querySelectorAll('body *')) {
    if (e instanceof SVGElement || !visible(e)) continue;
    if (['INPUT', 'SELECT', 'TEXTAREA', 'OPTION'].includes(e.tagName)) continue;
    const style = getComputedStyle(e), rect = e.getBoundingClientRect();
    if (style.display !== 'inline' && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1 && !excused(e)) {
      problems.push('clipped: ' + name(e) + ' ' + e.scrollWidth + ' > ' + e.clientWidth);
    }
    if (rect.right > vw + 1 && !e.closest('[data-scroll]')) problems.push('beyond the viewport: ' + name(e));
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || !n.textContent.trim() || p.closest('svg') || !visible(p) || excused(p)) continue;
    let block = p;
    while (block.parentElement && getComputedStyle(block).display === 'inline') block = block.parentElement;
    const range = document.createRange();
    range.selectNodeContents(n);
    const r = range.getBoundingClientRect(), box = block.getBoundingClientRect();
    if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) {
      problems.push('text outside its box: ' + name(block) + ' [' + Math.round(r.left) + ', ' + Math.round(r.right) +
                    '] in [' + Math.round(box.left) + ', ' + Math.round(box.right) + ']');
    }
  }
  for (const t of document.querySelectorAll('svg text')) {
    if (!visible(t) || t.closest('.world-map')) continue;
    const chart = t.ownerSVGElement.getBoundingClientRect(), r = t.getBoundingClientRect();
    const outside = r.left < chart.left - 1 || r.right > chart.right + 1;
    if (outside || r.top < chart.top - 1 || r.bottom > chart.bottom + 1) {
      problems.push('chart label outside its chart: "' + t.textContent + '"');
    }
    if (t.textContent === 'No data') problems.push('empty chart');
  }
  for (const td of document.querySelectorAll('td.empty')) {
    if (visible(td)) problems.push('empty panel: ' + name(td.closest('.card') || td));
  }
  for (const card of document.querySelectorAll('.card')) {
    if (!visible(card)) continue;
    for (const table of card.querySelectorAll('table')) {
      if (visible(table) && !table.querySelector('tbody tr')) problems.push('empty table: ' + name(table));
    }
    for (const box of card.querySelectorAll('.chart-box')) {
      if (visible(box) && !box.children.length) problems.push('empty chart box: #' + box.id);
    }
  }
  return problems;
}
"""


async def layout_problems(page: Page) -> list[str]:
    """The problems of the page as it is shown now (an empty list when it is clean)."""
    problems: list[str] = await page.evaluate(LAYOUT_PROBLEMS)
    return problems


async def checked_shot(page: Page, folder: Path, name: str) -> Path:
    """Fails on any layout problem of the page, else saves its full-page screenshot as ``folder/name.png``."""
    problems = await layout_problems(page)
    assert problems == [], f"{name}: {problems[:12]}"
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
