"""Why the ingest service refuses a request, without HTTP: web/errors.py maps each kind to its answer
(413, 403, 429 with Retry-After, 503 with Retry-After)."""

from __future__ import annotations

__all__ = ["IngestError", "RateLimited", "SiteRefused", "TooLarge", "Unavailable"]


class IngestError(Exception):
    """A request the ingest service does not take; ``retry_after``: seconds a client should wait, if any."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class TooLarge(IngestError):
    """The request would store more than ANALYTICS_REQUEST_BYTES."""


class SiteRefused(IngestError):
    """A beacon hit for a site ANALYTICS_SITES does not accept."""


class RateLimited(IngestError):
    """A beacon hit over its IP's or its site's rate."""


class Unavailable(IngestError):
    """The queue is full or Redis cannot be reached: retry later."""
