"""Tags on network API resources (Neutron's `standard-attr-tag`), one service for
every kind: replace all, add one, check one, list, remove one or all.

A kind is its collection name and a loader: the loader fetches the resource
through its own service with the caller's context (so an invisible one is that
service's 404) and says who owns it and what its policy target is. Adding a kind
(routers) is one entry in the mapping given to TagService (service/api.py).

Policy (Neutron's names, e.g. for networks): `get_networks_tags` to read,
`update_networks_tags` to replace all, `create_networks_tags` to add one,
`delete_networks_tags` to remove; the target is the tagged resource's.
Limits as Neutron's: a tag is 1 to 60 characters, at most 50 a resource."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import tags as db
from novalet.db.engine import Database

MAX_TAG_LENGTH = 60
MAX_TAGS = 50


@dataclass(frozen=True)
class Owner:
    """Who owns a tagged resource and what policy rules read of it."""

    project_id: str
    target: Mapping[str, Any]


Loader = Callable[[RequestContext, str], Awaitable[Owner]]


class TagNotFound(exceptions.NotFound):
    neutron_type = "TagNotFound"
    msg_fmt = "Tag %(tag)s could not be found for %(resource)s %(resource_id)s."


class InvalidTag(exceptions.Invalid):
    neutron_type = "InvalidInput"
    msg_fmt = "Invalid input for operation: %(reason)s"


class TagResourceNotFound(exceptions.NotFound):
    neutron_type = "NotFound"
    msg_fmt = "Resource %(kind)s does not take tags."


def policy_name(kind: str) -> str:
    """Neutron's rule infix: the collection with underscores (security_groups)."""
    return kind.replace("-", "_")


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag:
        raise InvalidTag(reason=f"'{tag}' is not a valid tag: a non-empty string")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidTag(reason=f"'{tag[:40]}...' exceeds maximum length of "
                         f"{MAX_TAG_LENGTH}")
    return tag


def check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        raise InvalidTag(reason="tags must be a list of strings")
    checked = list(dict.fromkeys(check_tag(t) for t in tags))
    if len(checked) > MAX_TAGS:
        raise InvalidTag(reason=f"{len(checked)} tags: a resource has at most {MAX_TAGS}")
    return checked


class TagService:
    def __init__(self, database: Database, loaders: Mapping[str, Loader]) -> None:
        self.db = database
        self.loaders = dict(loaders)

    @property
    def kinds(self) -> Collection[str]:
        return self.loaders.keys()

    async def _owner(self, ctx: RequestContext, kind: str, resource_id: str,
                     action: str) -> Owner:
        loader = self.loaders.get(kind)
        if loader is None:
            raise TagResourceNotFound(kind=kind[:40])
        owner = await loader(ctx, resource_id)
        policy.enforce(ctx, f"{action}_{policy_name(kind)}_tags", owner.project_id,
                       owner.target)
        return owner

    async def list_tags(self, ctx: RequestContext, kind: str, resource_id: str) -> list[str]:
        await self._owner(ctx, kind, resource_id, "get")
        return (await db.tags_of(self.db, kind, [resource_id])).get(resource_id, [])

    async def has_tag(self, ctx: RequestContext, kind: str, resource_id: str,
                      tag: str) -> None:
        """Nothing when the resource has the tag; TagNotFound (404) otherwise."""
        if tag not in await self.list_tags(ctx, kind, resource_id):
            raise TagNotFound(tag=tag[:60], resource=kind, resource_id=resource_id)

    async def replace_tags(self, ctx: RequestContext, kind: str, resource_id: str,
                           tags: Any) -> list[str]:
        checked = check_tags(tags)
        owner = await self._owner(ctx, kind, resource_id, "update")
        await db.replace(self.db, kind, resource_id, checked, owner.project_id)
        return sorted(checked)

    async def add_tag(self, ctx: RequestContext, kind: str, resource_id: str,
                      tag: str) -> None:
        check_tag(tag)
        owner = await self._owner(ctx, kind, resource_id, "create")
        try:
            await db.add(self.db, kind, resource_id, tag, MAX_TAGS, owner.project_id)
        except db.TooManyTags:
            raise InvalidTag(reason=f"{kind} {resource_id} has {MAX_TAGS} tags already, "
                             "the most a resource has; remove one first") from None

    async def remove_tag(self, ctx: RequestContext, kind: str, resource_id: str,
                         tag: str) -> None:
        await self._owner(ctx, kind, resource_id, "delete")
        if not await db.remove(self.db, kind, resource_id, tag):
            raise TagNotFound(tag=tag[:60], resource=kind, resource_id=resource_id)

    async def remove_all(self, ctx: RequestContext, kind: str, resource_id: str) -> None:
        await self._owner(ctx, kind, resource_id, "delete")
        await db.remove(self.db, kind, resource_id)

    async def tags_of(self, kind: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """For views the caller may already see: id -> tags (one query)."""
        return await db.tags_of(self.db, kind, ids)
