"""msgspec's validation errors told in the service's words: ``event is required``, not ``Expected `str```.

The wording of each case is declared on the field's type in ``model.wire`` (``Meta(extra=...)``);
this module only finds the field an error points at (its ``$.batch[2].event`` path, walked through
the Struct's type information) and fills in the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
from msgspec import inspect as mi

from .wire import SPELLINGS, MessageError

__all__ = ["Explained", "explain"]

_AT = re.compile(r"^(?P<text>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")
_LENGTH = re.compile(r"^Expected `[^`]*` of length (?P<op>[<>])= (?P<bound>\d+)")
_NULL = re.compile(r"^Expected `[^`]*`, got `null`")
_TAG = re.compile(r"^Invalid value ")
ROOT_INVALID = "each message must be a JSON object"


@dataclass(frozen=True)
class Explained:
    """The client's message, and the batch index of the bad message (None outside a batch)."""

    message: str
    index: int | None


@dataclass(frozen=True)
class _Site:
    """Where an error points: the field's wire name, the wording of its type, whether it is required or a tag."""

    name: str
    says: dict[str, str]
    required: bool = False
    tag: bool = False


def _tokens(path: str) -> list[str | int]:
    return [name if name is not None else int(index) for name, index in
            ((m.group(1), m.group(2)) for m in _TOKEN.finditer(path))]


def _unwrap(tp: mi.Type, says: dict[str, str]) -> mi.Type:
    """Strip Metadata wrappers (collecting their wording) and a null from an optional union."""
    while True:
        if isinstance(tp, mi.Metadata):
            says.update({k: v for k, v in (tp.extra or {}).items() if k not in says})
            tp = tp.type
        elif isinstance(tp, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in tp.types):
            rest = [t for t in tp.types if not isinstance(t, mi.NoneType)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


@cache
def _info(cls: type) -> mi.Type:
    return mi.type_info(cls)


def _struct_of(tp: mi.Type, value: Any) -> mi.StructType | None:
    if isinstance(tp, mi.StructType):
        return tp
    if isinstance(tp, mi.UnionType):  # tagged union: the value's tag picks the Struct
        for option in tp.types:
            if isinstance(option, mi.StructType) and isinstance(value, dict) and \
                    value.get(option.tag_field) == option.tag:
                return option
    return None


def _locate(root: type, tokens: list[str | int], value: Any, root_says: dict[str, str]) -> _Site:
    """The field (or list item) ``tokens`` lead to from ``root``, with the wording declared on its type."""
    says = dict(root_says)
    tp = _unwrap(_info(root), says)
    site = _Site("", says)
    for token in tokens:
        if isinstance(token, int):  # an item of a list: its own wording (and the name of the list)
            if not isinstance(tp, mi.ListType):
                return _Site(site.name, {})
            value = value[token] if isinstance(value, list) and token < len(value) else None
            says = {}
            tp = _unwrap(tp.item_type, says)
            site = _Site(site.name, says)
            continue
        struct = _struct_of(tp, value)
        if struct is not None and token == struct.tag_field:  # the item's type: worded by the item
            return _Site(token, site.says, tag=True)
        field = next((f for f in struct.fields if f.encode_name == token), None) if struct else None
        if field is None:
            if isinstance(tp, mi.UnionType) and token == "type":  # an unknown tag: no Struct was picked
                return _Site(token, site.says, tag=True)
            return _Site(token, {})
        value = value.get(token) if isinstance(value, dict) else None
        says = {}
        tp = _unwrap(field.type, says)
        site = _Site(token, says, required=field.required)
    return site


def _wording(site: _Site, text: str, value_len: int | None) -> str:
    name = SPELLINGS.get(site.name, site.name)
    says = site.says
    if site.tag:
        template = says.get("tag", "{field} is not a known type")
    elif (m := _LENGTH.match(text)) is not None:
        bound = int(m.group("bound"))
        if m.group("op") == ">":
            template = says.get("empty", "{field} must not be empty")
        else:
            template = says.get("too_long", "{field} is longer than {max} characters")
        return template.format(field=name, max=bound, min=bound, n=value_len)
    elif _NULL.match(text) and site.required:
        template = says.get("missing", "{field} is required")
    elif text.startswith("Expected "):
        template = says.get("invalid", "{field} has the wrong type")
    else:
        return f"{name}: {text}" if name else text
    return template.format(field=name)


def _value_at(value: Any, tokens: list[str | int]) -> Any:
    for token in tokens:
        if isinstance(token, int):
            value = value[token] if isinstance(value, list) and token < len(value) else None
        else:
            value = value.get(token) if isinstance(value, dict) else None
    return value


def explain(exc: msgspec.ValidationError, root: type, value: Any) -> Explained:
    """The message for ``exc``, raised converting ``value`` to the Struct ``root``."""
    m = _AT.match(str(exc))
    assert m is not None  # the pattern matches any text
    tokens = _tokens(m.group("path") or "")
    index = next((t for t in tokens if isinstance(t, int)), None)
    if isinstance(exc.__cause__, MessageError):  # a rule of __post_init__: its text is the message
        return Explained(str(exc.__cause__), index)
    text = m.group("text")
    root_says = {"invalid": ROOT_INVALID}
    if (missing := _MISSING.match(text)) is not None:  # the path names the object; the field is in the text
        tokens = [*tokens, missing.group("field")]
        site = _locate(root, tokens, value, root_says)
        if site.tag:
            return Explained(site.says.get("missing", "type is required"), index)
        name = SPELLINGS.get(site.name, site.name)
        return Explained(site.says.get("missing", "{field} is required").format(field=name), index)
    site = _locate(root, tokens, value, root_says)
    if _TAG.match(text) and not site.tag:
        site = _Site(site.name, site.says, tag=True)
    found = _value_at(value, tokens)
    return Explained(_wording(site, text, len(found) if isinstance(found, str | list | dict) else None), index)
