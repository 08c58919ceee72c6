"""The ingest bodies as msgspec Structs: one class per wire shape.

Each field is declared once, with its type, bounds and description; the same class validates the
body (``msgspec.convert``), gives the OpenAPI schema (``model.schema``) and names the field in error
messages (``model.explain``). Both spellings a client may use are fields (``user_id`` and Segment's
``userId``); :data:`SPELLINGS` says which wire names are one field.

Rules one field's type cannot say (either id present, a name that is only spaces) are in
``__post_init__`` and raise :class:`MessageError`, whose text becomes the 400 message as is.

To add a field: declare it here (on the message kinds that carry it), then give it a column in
``model.record.EventRecord`` and a line in ``ingest/normalize.py`` that fills it.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from msgspec import Meta, Struct

__all__ = [
    "BATCH_KINDS",
    "KINDS",
    "MAX_BATCH",
    "MAX_ID",
    "MAX_NAME",
    "SPELLINGS",
    "SUBJECT_MESSAGE",
    "Alias",
    "Batch",
    "Group",
    "Hit",
    "Identify",
    "Message",
    "MessageError",
    "Page",
    "Screen",
    "Track",
    "subject_id",
]

MAX_BATCH = 100
MAX_NAME = 200
MAX_ID = 255
MAX_SESSION = 128
MAX_TEXT = 2048
SUBJECT_MESSAGE = f"distinct_id must be 1-{MAX_ID} characters, without NUL"


def subject_id(value: str) -> str:
    """A distinct id an operator names (erasure, export, suppression; API or command line) as ingest stores it:
    surrounding white space trimmed (ingest stores " u1" as "u1"). ValueError(SUBJECT_MESSAGE) when empty, longer
    than MAX_ID or holding NUL."""
    value = value.strip()
    if not value or len(value) > MAX_ID or "\x00" in value:
        raise ValueError(SUBJECT_MESSAGE)
    return value


class MessageError(ValueError):
    """A message breaks a rule; the text says which and why (it becomes the 400 message).

    ``index`` is the position of the bad message in a batch (None for a single message).
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def _says(invalid: str, **more: str) -> dict[str, str]:
    """What a client is told when a value of this type is wrong (``{field}`` is the field's name; see model.explain).

    ``invalid``: the wrong JSON type. Optional: ``missing`` (absent or null where required; default
    "{field} is required"), ``empty`` (shorter than its minimum), ``too_long`` (``{max}`` and ``{n}``
    are filled in; default "{field} is longer than {max} characters"), ``tag`` (an unknown ``type``).
    """
    return {"invalid": invalid, **more}


# --- field types: the type, its bounds, its description and its error wording in one place ------------------

Ident = Annotated[
    Annotated[str, Meta(max_length=MAX_ID)] | int,
    Meta(description=f"a string (or integer) of at most {MAX_ID} characters", extra=_says("{field} must be a string")),
]
MessageId = Annotated[
    Annotated[str, Meta(min_length=1, max_length=MAX_ID)] | int,
    Meta(description="the client's id of the message: a retry with the same id is stored once (a uuid is kept, "
                     "other text is mapped to a uuid)",
         extra=_says("{field} must be a non-empty string", empty="{field} must be a non-empty string")),
]
Object = Annotated[dict[str, Any], Meta(extra=_says("{field} must be a JSON object"))]
Properties = Annotated[dict[str, Any], Meta(description="at most 4 KB of JSON; larger is truncated with a warning",
                                            extra=_says("{field} must be a JSON object"))]
Timestamp = Annotated[
    str | float,
    Meta(description="ISO-8601 (Z or offset; naive means UTC) or Unix seconds; a future time becomes now",
         extra=_says("{field} must be an ISO-8601 string")),
]
EventName = Annotated[str, Meta(min_length=1, max_length=MAX_NAME, description="the event's name",
                                extra=_says("{field} must be a string", empty="{field} is required"))]
Text = Annotated[str, Meta(extra=_says("{field} must be a string"))]
SessionId = Annotated[str | int, Meta(description=f"the client's session; at most {MAX_SESSION} characters are kept",
                                      extra=_says("{field} must be a string"))]
Site = Annotated[str, Meta(description="the site (hostname); by default the host of the page URL",
                           extra=_says("{field} must be a string"))]
WriteKey = Annotated[str, Meta(description="the write key, for clients that cannot send headers",
                               extra=_says("{field} must be a string"))]

# Wire names that are another spelling of one field: the canonical name is the one errors and records use.
SPELLINGS: dict[str, str] = {
    "userId": "user_id", "anonymousId": "anonymous_id", "messageId": "message_id", "metadata": "properties",
    "originalTimestamp": "timestamp", "sent_at": "sentAt", "sessionId": "session_id", "groupId": "group_id",
    "previousId": "previous_id", "write_key": "writeKey",
}


def first(*values: Any) -> Any:
    """The first value that is not None (a field given in either spelling)."""
    for value in values:
        if value is not None:
            return value
    return None


def _present(value: str | int | None) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


class Message(Struct, kw_only=True):
    """Fields every message may carry, in the native snake_case and Segment's camelCase spellings."""

    kind: ClassVar[str]
    # The rules of __post_init__ as JSON Schema, for the OpenAPI document (model.schema adds them).
    rules: ClassVar[dict[str, Any]] = {"anyOf": [{"required": [name]} for name in
                                                 ("user_id", "userId", "anonymous_id", "anonymousId")]}

    user_id: Ident | None = None
    userId: Ident | None = None
    anonymous_id: Ident | None = None
    anonymousId: Ident | None = None
    message_id: MessageId | None = None
    messageId: MessageId | None = None
    timestamp: Timestamp | None = None
    originalTimestamp: Timestamp | None = None
    sentAt: Timestamp | None = None
    sent_at: Timestamp | None = None
    context: Annotated[Object, Meta(description="Segment context (ip, userAgent, locale, page, screen, ...)")] | None \
        = None
    properties: Properties | None = None
    metadata: Annotated[Properties, Meta(description="alias of properties")] | None = None
    session_id: SessionId | None = None
    sessionId: SessionId | None = None
    site: Site | None = None
    writeKey: WriteKey | None = None
    write_key: WriteKey | None = None

    def __post_init__(self) -> None:
        self._check_who()

    def _check_who(self) -> None:
        if not (_present(first(self.user_id, self.userId)) or _present(first(self.anonymous_id, self.anonymousId))):
            raise MessageError("user_id or anonymous_id is required")


class Track(Message, kw_only=True):
    """One event a user did."""

    kind: ClassVar[str] = "track"

    event: EventName

    def __post_init__(self) -> None:
        self._check_who()
        if not self.event.strip():
            raise MessageError("event is required")


class Identify(Message, kw_only=True):
    """Who a user is: traits merged into the user's profile (not an event)."""

    kind: ClassVar[str] = "identify"
    rules: ClassVar[dict[str, Any]] = {"anyOf": [{"required": ["user_id"]}, {"required": ["userId"]}]}

    traits: Annotated[Object, Meta(description="merged into the user's traits; else context.traits")] | None = None

    def __post_init__(self) -> None:
        if not _present(first(self.user_id, self.userId)):
            raise MessageError("identify needs a user_id")


class Page(Message, kw_only=True):
    """A page view: properties.url (or context.page.url), path and referrer describe the page."""

    kind: ClassVar[str] = "page"

    name: Text | None = None


class Screen(Message, kw_only=True):
    """A mobile screen view."""

    kind: ClassVar[str] = "screen"

    name: Text | None = None


class Group(Message, kw_only=True):
    """A user joins a group."""

    kind: ClassVar[str] = "group"
    rules: ClassVar[dict[str, Any]] = {"allOf": [Message.rules, {"anyOf": [{"required": ["groupId"]},
                                                                           {"required": ["group_id"]}]}]}

    groupId: Ident | None = None
    group_id: Ident | None = None
    traits: Annotated[Object, Meta(description="the group's traits (kept in properties)")] | None = None

    def __post_init__(self) -> None:
        self._check_who()
        if not _present(first(self.group_id, self.groupId)):
            raise MessageError("group needs a group_id")


class Alias(Message, kw_only=True):
    """A previous id of a user: links it to the user's person."""

    kind: ClassVar[str] = "alias"
    rules: ClassVar[dict[str, Any]] = {"allOf": [
        {"anyOf": [{"required": ["user_id"]}, {"required": ["userId"]}]},
        {"anyOf": [{"required": ["previousId"]}, {"required": ["previous_id"]}]}]}

    previousId: Ident | None = None
    previous_id: Ident | None = None

    def __post_init__(self) -> None:
        if not (_present(first(self.previous_id, self.previousId)) and _present(first(self.user_id, self.userId))):
            raise MessageError("alias needs a user_id and a previous_id")


# The kinds a message may be, by the ``type`` a batch item carries (single endpoints name the kind by path).
KINDS: dict[str, type[Message]] = {
    "track": Track, "page": Page, "identify": Identify, "screen": Screen, "group": Group, "alias": Alias,
}

# Batch items: the same shapes, told apart by ``type``.

class BatchTrack(Track, tag_field="type", tag="track"):
    """A track message of a batch."""


class BatchPage(Page, tag_field="type", tag="page"):
    """A page message of a batch."""


class BatchIdentify(Identify, tag_field="type", tag="identify"):
    """An identify message of a batch."""


class BatchScreen(Screen, tag_field="type", tag="screen"):
    """A screen message of a batch."""


class BatchGroup(Group, tag_field="type", tag="group"):
    """A group message of a batch."""


class BatchAlias(Alias, tag_field="type", tag="alias"):
    """An alias message of a batch."""


BATCH_KINDS: dict[str, type[Message]] = {
    "track": BatchTrack, "page": BatchPage, "identify": BatchIdentify, "screen": BatchScreen, "group": BatchGroup,
    "alias": BatchAlias,
}
_ONE_OF = f"type must be one of {', '.join(KINDS)}"
BatchItem = Annotated[
    BatchTrack | BatchPage | BatchIdentify | BatchScreen | BatchGroup | BatchAlias,
    Meta(extra=_says("each message must be a JSON object", missing=_ONE_OF, tag=_ONE_OF)),
]


_HOSTNAME = {"maxLength": 253, "pattern": "^[A-Za-z0-9_.-]+$"}
HitText = Annotated[str, Meta(extra=_says("{field} must be a string"))]


class Hit(Struct, kw_only=True):
    """A page view sent by the beacon script (``POST /hit``); other fields are ignored.

    Types are checked here; what a value must look like (a hostname, a path starting with /) and the lengths
    kept are applied when the hit becomes a record (``hits.parse_hit``), after surrounding spaces are cut.
    """

    site: Annotated[str, Meta(description="the site: location.hostname, or the script tag's data-site",
                              extra_json_schema={"minLength": 1, **_HOSTNAME},
                              extra=_says("{field} must be a string",
                                          missing="site is required (the page's hostname)"))]
    hostname: Annotated[str, Meta(description="the page's hostname, when it differs from the site",
                                  extra_json_schema=_HOSTNAME, extra=_says("{field} must be a string"))] | None = None
    path: Annotated[str, Meta(extra_json_schema={"pattern": "^/", "maxLength": 1024},
                              extra=_says("{field} must be a string"))] | None = None
    referrer: HitText | None = None
    language: HitText | None = None
    screen_width: Annotated[int | float, Meta(extra_json_schema={"minimum": 0, "maximum": 100000},
                                              extra=_says("{field} must be a number"))] | None = None
    session_id: Annotated[str, Meta(extra_json_schema={"maxLength": MAX_SESSION},
                                    extra=_says("{field} must be a string"))] | None = None
    anonymous_id: Annotated[str, Meta(description="the visitor's id, kept in localStorage (nsa_anonymous_id) and "
                                                  "shared with the browser SDK",
                                      extra_json_schema={"maxLength": MAX_ID},
                                      extra=_says("{field} must be a string"))] | None = None
    utm_source: HitText | None = None
    utm_medium: HitText | None = None
    utm_campaign: HitText | None = None
    utm_term: HitText | None = None
    utm_content: HitText | None = None
    webdriver: Annotated[bool, Meta(description="true when the browser is automated (marks a bot)",
                                    extra=_says("{field} must be a boolean"))] | None = None


class Batch(Struct, kw_only=True):
    """Messages sent together, validated together: one bad message rejects the batch (400 with its index)."""

    batch: Annotated[list[BatchItem], Meta(
        min_length=1, max_length=MAX_BATCH, description="the messages, each with its type",
        extra=_says("batch must be an array of messages", missing="batch must be an array of messages",
                    empty="batch must hold at least one message",
                    too_long="batch holds {n} messages; at most {max} are allowed"))]
    context: Annotated[Object, Meta(description="merged into every message's context")] | None = None
    sentAt: Timestamp | None = None
    writeKey: WriteKey | None = None
    write_key: WriteKey | None = None
