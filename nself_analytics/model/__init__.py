"""The typed event model: the ingest bodies (``wire``), what they become (``record``), their OpenAPI
schemas (``schema``) and their validation messages (``explain``), all from one set of msgspec Structs; and the
typed values the settings are parsed into (``settings_values``).

Imports nothing of the package: every other layer may import it."""

from .record import EVENT_COLUMNS, EventRecord, IdentifyRecord, UnknownColumn, column, decode_record
from .schema import ingest_schemas
from .wire import KINDS, Batch, Message, MessageError

__all__ = [
    "EVENT_COLUMNS",
    "KINDS",
    "Batch",
    "EventRecord",
    "IdentifyRecord",
    "Message",
    "MessageError",
    "UnknownColumn",
    "column",
    "decode_record",
    "ingest_schemas",
]
