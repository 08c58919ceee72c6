"""The OpenAPI schemas of the ingest bodies, generated from the Structs of ``model.wire``."""

from __future__ import annotations

from typing import Any

import msgspec

from .wire import BATCH_KINDS, KINDS, Batch, Hit, Message

__all__ = ["ingest_schemas"]

REF_TEMPLATE = "#/components/schemas/{name}"


def ingest_schemas() -> dict[str, dict[str, Any]]:
    """components/schemas entries of the message kinds (Track, Page, ...), their batch items, Batch and the
    beacon's Hit."""
    structs: list[type[msgspec.Struct]] = [*KINDS.values(), *BATCH_KINDS.values(), Batch, Hit]
    _refs, components = msgspec.json.schema_components(structs, ref_template=REF_TEMPLATE)
    for cls in structs:
        if isinstance(cls, type) and issubclass(cls, Message) and cls.rules:
            components[cls.__name__] = {**components[cls.__name__], **cls.rules}
    return components
