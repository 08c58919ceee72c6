"""A small line chart as a PNG, drawn offline in pure Python (zlib and struct of the standard library): the values
as a line with dots, the bounds as red dashed lines. Enough for a chat message or an email; no fonts."""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Sequence

__all__ = ["line_chart"]

WHITE, GRID, LINE, BOUND, DOT = (255, 255, 255), (226, 232, 240), (37, 99, 235), (220, 38, 38), (30, 64, 175)
MAX_SIDE = 2000


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def dot(self, x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            at = (y * self.width + x) * 3
            self.pixels[at:at + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int], dash: int = 0) -> None:
        """Bresenham's line, two pixels thick; ``dash``: pixels on, pixels off."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err, step = dx + dy, 0
        while True:
            if not dash or (step // dash) % 2 == 0:
                self.dot(x0, y0, color)
                self.dot(x0, y0 + 1, color)
            step += 1
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err, x0 = err + dy, x0 + sx
            if e2 <= dx:
                err, y0 = err + dx, y0 + sy

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
                       for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + \
            chunk(b"IEND", b"")


def line_chart(values: Sequence[float | None], bounds: Sequence[float | None] = (), width: int = 480,
               height: int = 160) -> bytes:
    """The PNG of ``values`` (None: a gap) left to right, with horizontal ``bounds``."""
    width, height = max(16, min(width, MAX_SIDE)), max(16, min(height, MAX_SIDE))
    canvas = _Canvas(width, height)
    pad = 8
    known = [v for v in values if v is not None] + [b for b in bounds if b is not None]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    if high == low:
        low, high = low - 1, high + 1
    span = high - low
    low, high = low - span * 0.08, high + span * 0.08

    def y_of(value: float) -> int:
        return round(height - pad - (value - low) / (high - low) * (height - 2 * pad))

    for k in range(5):
        y = pad + k * (height - 2 * pad) // 4
        canvas.line(pad, y, width - pad, y, GRID)
    for bound in bounds:
        if bound is not None:
            canvas.line(pad, y_of(bound), width - pad, y_of(bound), BOUND, dash=6)
    n = len(values)
    points = [(pad + (i * (width - 2 * pad) // max(n - 1, 1)), y_of(v)) if v is not None else None
              for i, v in enumerate(values)]
    for a, b in itertools.pairwise(points):
        if a is not None and b is not None:
            canvas.line(*a, *b, LINE)
    for p in points:
        if p is not None:
            for ox in (-2, -1, 0, 1, 2):
                for oy in (-2, -1, 0, 1, 2):
                    canvas.dot(p[0] + ox, p[1] + oy, DOT)
    return canvas.png()
