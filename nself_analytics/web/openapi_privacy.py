"""The OpenAPI answer of GET /persons/{id}/export (a typed route whose answer is a stream, not JSON): its
parameters come from its Route (api/privacy.py), its 200 from here (web/openapi.py ``operation``)."""

from __future__ import annotations

from .openapi_parts import Op

__all__ = ["privacy_ops"]


def privacy_ops() -> dict[tuple[str, str], Op]:
    return {
        ("GET", "/persons/{id}/export"): {"responses": {"200": {
            "description": "One JSON object a line: events in the export's Segment-like shape (with messageId), "
                           "then identify lines (traits) and alias lines (links); empty for an unknown id",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}}},
    }
