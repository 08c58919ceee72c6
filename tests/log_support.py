"""Capturing structlog lines in a test whatever level an earlier test configured (a data command run in-process
configures warning level: its stdout is its answer), so a test that asserts an info line is independent of order."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import structlog


@contextlib.contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """structlog.testing.capture_logs with every level let through, the previous configuration restored after."""
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as lines:
            yield lines
    finally:
        structlog.configure(**previous)
