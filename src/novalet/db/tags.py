"""Tags of network API resources (the `tags` table, 0020): read, replace, add, remove,
and forget a resource's when it goes (called inside the deleting transaction)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.db.engine import Database
from novalet.db.models import Tag
from novalet.db.quotas import lock_project


class TooManyTags(exceptions.Invalid):
    """The caller's message names the resource; this one carries the numbers."""

    msg_fmt = "%(count)s tags: at most %(limit)s"


async def tags_of(db: Database, kind: str, ids: Collection[str]) -> dict[str, list[str]]:
    """resource id -> its tags (sorted), for the given ids of one kind (one query)."""
    if not ids:
        return {}
    found: dict[str, list[str]] = {}
    async with db.transaction() as s:
        rows = await s.execute(select(Tag.resource_id, Tag.tag).where(
            Tag.resource_type == kind, Tag.resource_id.in_(list(ids))).order_by(Tag.tag))
        for resource_id, tag in rows:
            found.setdefault(resource_id, []).append(tag)
    return found


async def replace(db: Database, kind: str, resource_id: str, tags: Sequence[str],
                  owner: str) -> None:
    """The resource's tags become `tags`. Writers take turns under the owner project's
    quota lock, so a count reads what the writer before committed."""
    async with db.transaction() as s:
        await lock_project(s, owner)
        await s.execute(delete(Tag).where(Tag.resource_type == kind,
                                          Tag.resource_id == resource_id))
        s.add_all(Tag(resource_type=kind, resource_id=resource_id, tag=t)
                  for t in dict.fromkeys(tags))


async def add(db: Database, kind: str, resource_id: str, tag: str, limit: int,
              owner: str) -> None:
    """Add one tag (already there: nothing changes); TooManyTags past limit."""
    try:
        async with db.transaction() as s:
            await lock_project(s, owner)
            existing = list((await s.execute(select(Tag.tag).where(
                Tag.resource_type == kind, Tag.resource_id == resource_id))).scalars())
            if tag in existing:
                return
            if len(existing) + 1 > limit:
                raise TooManyTags(count=len(existing) + 1, limit=limit)
            s.add(Tag(resource_type=kind, resource_id=resource_id, tag=tag))
    except IntegrityError:  # a concurrent adder of the same tag won: it is there
        return


async def remove(db: Database, kind: str, resource_id: str, tag: str | None = None) -> int:
    """Remove one tag (or all of them, tag None); how many went."""
    where = [Tag.resource_type == kind, Tag.resource_id == resource_id]
    if tag is not None:
        where.append(Tag.tag == tag)
    async with db.transaction() as s:
        count = (await s.execute(select(func.count(Tag.id)).where(*where))).scalar_one()
        await s.execute(delete(Tag).where(*where))
    return int(count)


async def forget(s: AsyncSession, kind: str, ids: Any) -> None:
    """Inside a transaction that deletes resources: their tags go too. ids is a list
    of ids or a select of them."""
    await s.execute(delete(Tag).where(Tag.resource_type == kind, Tag.resource_id.in_(ids))
                    .execution_options(synchronize_session=False))
