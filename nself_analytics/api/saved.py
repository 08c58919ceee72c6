"""The create/list/get/update/delete routes of an account's saved objects (alerts, report subscriptions), declared
once: a :class:`SavedKind` names the table (store/saved_objects.py), the body Struct, the answer Structs and the
cap, and :meth:`SavedKind.routes` gives its five ``Route`` entries. The body is decoded by the route table
(web/routing.py ``Route.body``); a PATCH body is the same Struct with every field optional (:func:`patch_of`),
merged onto the stored definition, whose whole is checked again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from aiohttp import web

from ..config import Settings
from ..model.alert_spec import SpecError
from ..store.saved_objects import SavedTable
from ..web import params
from ..web.appkeys import SETTINGS
from ..web.errors import ApiError
from ..web.pools import writing
from ..web.routing import TOKEN, Route

__all__ = ["DeletedAnswer", "ObjectId", "SavedKind", "object_id", "patch_of"]

B = TypeVar("B", bound=msgspec.Struct)
MAX_ID_DIGITS = 18  # a longer id cannot be stored (bigint): not found, as any unknown id


class ObjectId(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[0-9]+$", description="The object's id")]


class DeletedAnswer(msgspec.Struct, kw_only=True):
    status: Literal["success"] = "success"
    deleted: Literal[True] = True


def patch_of(struct: type[B]) -> type[msgspec.Struct]:
    """``struct`` with every field optional (absent: unchanged), as a PATCH body takes it."""
    fields = [(f.name, f.type | msgspec.UnsetType, msgspec.UNSET) for f in msgspec.structs.fields(struct)]
    patch = msgspec.defstruct(f"{struct.__name__}Patch", fields, kw_only=True, forbid_unknown_fields=True,
                              omit_defaults=True, module=struct.__module__)
    patch.__doc__ = f"The top-level fields of {struct.__name__} to change (a nested object is replaced whole)"
    return patch


def object_id(ids: ObjectId, noun: str) -> int:
    """The id of the path, or 404 (a number too long to be stored is no object either)."""
    if len(ids.id) > MAX_ID_DIGITS:
        raise ApiError(404, f"{noun.capitalize()} not found")
    return int(ids.id)


@dataclass(frozen=True)
class SavedKind(Generic[B]):
    """One kind of saved object: ``noun`` (alert) names its answers' key and messages, ``plural`` (alerts) its path,
    list key and tag; ``decode`` turns a whole body into ``body`` with its rules checked (SpecError: 400);
    ``stored`` reads a row's definition back; ``view``/``one``/``many`` are the answer Structs (``view`` holds the
    body's fields and the row's); ``check`` refuses what names something the account does not have."""

    noun: str
    plural: str
    table: SavedTable
    body: type[B]
    decode: Callable[[Any], B]
    stored: Callable[[dict[str, Any]], B]
    view: type[msgspec.Struct]
    one: type[msgspec.Struct]
    many: type[msgspec.Struct]
    check: Callable[[Any, str, B], Awaitable[None]]
    cap: int
    summaries: dict[str, str] = field(default_factory=dict)

    @property
    def not_found(self) -> str:
        return f"{self.noun.capitalize()} not found"

    def _decode(self, data: Any, settings: Settings) -> B:
        try:
            body: Any = self.decode(data)
        except SpecError as exc:
            raise ApiError(400, str(exc)) from None
        channels = body.channels
        if message := settings.unconfigured(channels.telegram_chat, channels.discord_channel, channels.emails):
            raise ApiError(400, message)
        return body

    def answer(self, row: dict[str, Any]) -> msgspec.Struct:
        fields = msgspec.structs.asdict(self.stored(row))
        view = self.view(**{**fields, **{k: v for k, v in row.items() if k not in ("spec", "account")}})
        return self.one(**{self.noun: view})

    @staticmethod
    def _spec(body: msgspec.Struct) -> dict[str, Any]:
        spec = msgspec.to_builtins(body)
        spec.pop("name", None)
        spec.pop("enabled", None)
        return dict(spec)

    async def get_row(self, conn: Any, account: str, object_id: int) -> dict[str, Any]:
        """The stored row, or 404."""
        row = await self.table.get(conn, account, object_id)
        if row is None:
            raise ApiError(404, self.not_found)
        return row

    async def create(self, request: web.Request, given: B) -> msgspec.Struct:
        account = params.account(request)
        body: Any = self._decode(msgspec.to_builtins(given), request.app[SETTINGS])
        async with writing(request) as conn:
            await self.check(conn, account, body)
            if await self.table.count(conn, account) >= self.cap:
                raise ApiError(409, f"An account has at most {self.cap} {self.plural}")
            row = await self.table.create(conn, account=account, name=body.name.strip(),
                                          spec=self._spec(body), enabled=body.enabled)
        return self.answer(row)

    async def list_(self, request: web.Request) -> msgspec.Struct:
        async with writing(request) as conn:
            rows = await self.table.listed(conn, params.account(request))
        return self.many(**{self.plural: [getattr(self.answer(row), self.noun) for row in rows]})

    async def get(self, request: web.Request, ids: ObjectId) -> msgspec.Struct:
        async with writing(request) as conn:
            row = await self.get_row(conn, params.account(request), object_id(ids, self.noun))
        return self.answer(row)

    async def update(self, request: web.Request, ids: ObjectId, changes: msgspec.Struct) -> msgspec.Struct:
        """Change some top-level fields (a nested object is replaced whole); checked as a whole again."""
        account, key = params.account(request), object_id(ids, self.noun)
        given = {k: v for k, v in msgspec.structs.asdict(changes).items() if v is not msgspec.UNSET}
        async with writing(request) as conn:
            current = await self.get_row(conn, account, key)
            merged = {**msgspec.to_builtins(self.stored(current)), **msgspec.to_builtins(given)}
            body: Any = self._decode(merged, request.app[SETTINGS])
            await self.check(conn, account, body)
            row = await self.table.update(conn, key, account=account, name=body.name.strip(),
                                          spec=self._spec(body), enabled=body.enabled)
        if row is None:
            raise ApiError(404, self.not_found)
        return self.answer(row)

    async def delete(self, request: web.Request, ids: ObjectId) -> DeletedAnswer:
        async with writing(request) as conn:
            deleted = await self.table.delete(conn, params.account(request), object_id(ids, self.noun))
        if not deleted:
            raise ApiError(404, self.not_found)
        return DeletedAnswer()

    def routes(self) -> list[Route]:
        """POST/GET /<plural>, GET/PATCH/DELETE /<plural>/{id} (secret token; per account)."""
        path, item, tags, noun = f"/{self.plural}", rf"/{self.plural}/{{id:\d+}}", (self.plural.capitalize(),), \
            self.noun
        missing = ((404, f"No such {noun} in the account"),)
        said = self.summaries
        return [
            Route("POST", path, self.create, TOKEN, name=f"{self.plural}_create", tags=tags, body=self.body,
                  answer=self.one, status=201, errors=((409, f"The account has {self.cap} {self.plural}"),),
                  summary=said.get("create", f"Create an {noun}")),
            Route("GET", path, self.list_, TOKEN, name=f"{self.plural}_list", tags=tags, answer=self.many,
                  summary=said.get("list", f"List {self.plural}")),
            Route("GET", item, self.get, TOKEN, name=f"{self.plural}_get", tags=tags, params=ObjectId,
                  answer=self.one, errors=missing, summary=said.get("get", f"One {noun}")),
            Route("PATCH", item, self.update, TOKEN, name=f"{self.plural}_update", tags=tags, params=ObjectId,
                  body=patch_of(self.body), answer=self.one, errors=missing,
                  summary=said.get("update", f"Change some fields of an {noun}")),
            Route("DELETE", item, self.delete, TOKEN, name=f"{self.plural}_delete", tags=tags, params=ObjectId,
                  answer=DeletedAnswer, errors=missing, summary=said.get("delete", f"Delete an {noun}")),
        ]
