"""Images and their members in the database, with Glance's visibility rules as SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from novalet.db.engine import Database, rows_matched
from novalet.db.models import Image, ImageMember, utcnow


class DuplicateImage(Exception):
    """An image with this id exists already."""


class DuplicateMember(Exception):
    """The project is a member of the image already."""


# Sort keys clients may use, as expressions without NULLs so keyset paging is exact.
SORT_KEYS: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
    "name": func.coalesce(Image.name, ""),
    "status": Image.status,
    "visibility": Image.visibility,
    "owner": func.coalesce(Image.owner, ""),
    "container_format": func.coalesce(Image.container_format, ""),
    "disk_format": func.coalesce(Image.disk_format, ""),
    "size": func.coalesce(Image.size, -1),
    "virtual_size": func.coalesce(Image.virtual_size, -1),
    "min_disk": Image.min_disk,
    "min_ram": Image.min_ram,
    "id": Image.id,
    "created_at": Image.created_at,
    "updated_at": func.coalesce(Image.updated_at, Image.created_at),
}


@dataclass
class ImageQuery:
    """One page of an image listing, as the API asked for it.

    `viewer` is the project whose view applies; None lists as an admin (no
    visibility restriction beyond the `visibility` filter)."""

    viewer: str | None
    visibility: str | None = None
    member_status: str = "accepted"
    match: dict[str, list[Any]] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    size_min: int | None = None
    size_max: int | None = None
    updated_since: dt.datetime | None = None  # changed at or after (Nova's changes-since)
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    marker: str | None = None
    limit: int = 25


# --- images ---------------------------------------------------------------

async def create_image(db: Database, values: dict[str, Any]) -> Image:
    """Insert an image; DuplicateImage when the id is taken."""
    now = utcnow()
    image = Image(created_at=now, updated_at=now, **values)
    try:
        async with db.transaction() as session:
            session.add(image)
    except IntegrityError:
        raise DuplicateImage(values.get("id")) from None
    return image


async def get_image(db: Database, image_id: str) -> Image | None:
    async with db.transaction() as session:
        return await session.get(Image, image_id)


async def update_image(db: Database, image_id: str, mutate: Callable[[Image], None]
                       ) -> Image | None:
    """Load the image, let `mutate` change it and save it, all in one transaction.
    None when the image is gone; whatever `mutate` raises rolls the change back."""
    async with db.transaction() as session:
        image = await session.get(Image, image_id, with_for_update=True)
        if image is None:
            return None
        mutate(image)
        image.updated_at = utcnow()
    return image


async def set_status(db: Database, image_id: str, expected: str, status: str,
                     **values: Any) -> bool:
    """Compare-and-swap the status: True when the image was in `expected`."""
    async with db.transaction() as session:
        result = await session.execute(
            update(Image).where(Image.id == image_id, Image.status == expected)
            .values(status=status, updated_at=utcnow(), **values))
        return bool(rows_matched(result))


async def delete_image(db: Database, image_id: str,
                       statuses: tuple[str, ...] | None = None) -> bool:
    """Delete the image and its members; False when it was already gone (or, with
    `statuses`, is in none of them: a compare-and-delete)."""
    async with db.transaction() as session:
        query = delete(Image).where(Image.id == image_id)
        if statuses is not None:
            query = query.where(Image.status.in_(statuses))
        result = await session.execute(query)
        if not rows_matched(result):
            return False
        await session.execute(delete(ImageMember).where(ImageMember.image_id == image_id))
        return True


async def list_images(db: Database, query: ImageQuery) -> list[Image]:
    """Images the query's viewer may list, filtered, sorted, after the marker, one page."""
    sort = _with_tiebreak(query.sort)
    stmt = select(Image).where(*_visible(query), *_filters(db, query))
    async with db.transaction() as session:
        if query.marker is not None:
            stmt = stmt.where(await _after_marker(session, query.marker, sort))
        stmt = stmt.order_by(*(_ordered(key, direction) for key, direction in sort))
        rows = await session.scalars(stmt.limit(query.limit))
        return list(rows)


def _with_tiebreak(sort: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if any(key == "id" for key, _ in sort):
        return sort
    return [*sort, ("id", sort[-1][1] if sort else "desc")]


def _ordered(key: str, direction: str) -> ColumnElement[Any]:
    expr = SORT_KEYS[key]
    return expr.asc() if direction == "asc" else expr.desc()


async def _after_marker(session: AsyncSession, marker: str,
                        sort: list[tuple[str, str]]) -> ColumnElement[bool]:
    """Rows strictly after the marker image in the sort order (keyset paging)."""
    exprs = [SORT_KEYS[key] for key, _ in sort]
    values = (await session.execute(select(*exprs).where(Image.id == marker))).one()
    branches = []
    for i, (expr, (_, direction)) in enumerate(zip(exprs, sort, strict=True)):
        beyond = expr > values[i] if direction == "asc" else expr < values[i]
        branches.append(and_(*(exprs[j] == values[j] for j in range(i)), beyond))
    return or_(*branches)


def _member_of(project: str, status: str) -> ColumnElement[bool]:
    cond = [ImageMember.image_id == Image.id, ImageMember.member == project]
    if status != "all":
        cond.append(ImageMember.status == status)
    return exists().where(*cond)


def _visible(query: ImageQuery) -> list[ColumnElement[bool]]:
    """Glance's listing rules: public, own, and shared-with-me (by member status);
    community images only when asked for."""
    vis, me = query.visibility, query.viewer
    conds: list[ColumnElement[bool]] = []
    if vis not in (None, "all"):
        conds.append(Image.visibility == vis)
    if me is None:
        return conds
    shared_with_me = and_(Image.visibility == "shared", _member_of(me, query.member_status))
    if vis == "community" or vis == "public":
        return conds
    mine_or_public = or_(Image.visibility == "public", Image.owner == me)
    if vis == "all":
        mine_or_public = or_(mine_or_public, Image.visibility == "community")
    conds.append(or_(mine_or_public, shared_with_me))
    return conds


def _filters(db: Database, query: ImageQuery) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    for name, values in query.match.items():
        column = getattr(Image, name)
        conds.append(column == values[0] if len(values) == 1 else column.in_(values))
    for key, value in query.properties.items():
        conds.append(Image.properties[key].as_string() == value)
    conds.extend(_has_tag(db, tag) for tag in query.tags)
    if query.size_min is not None:
        conds.append(Image.size >= query.size_min)
    if query.size_max is not None:
        conds.append(Image.size <= query.size_max)
    if query.updated_since is not None:
        conds.append(func.coalesce(Image.updated_at, Image.created_at) >= query.updated_since)
    return conds


def _has_tag(db: Database, tag: str) -> ColumnElement[bool]:
    """Tags are a JSON list; each backend spells 'list contains' its own way."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        contains: ColumnElement[bool] = Image.tags.cast(JSONB).contains([tag])
        return contains
    if dialect in ("mysql", "mariadb"):
        return func.json_contains(Image.tags, func.json_quote(tag)) == 1
    elements = func.json_each(Image.tags).table_valued("value")
    return exists().select_from(elements).where(elements.c.value == tag)


# --- members --------------------------------------------------------------

async def list_members(db: Database, image_id: str) -> list[ImageMember]:
    async with db.transaction() as session:
        rows = await session.scalars(select(ImageMember).where(
            ImageMember.image_id == image_id).order_by(ImageMember.created_at))
        return list(rows)


async def get_member(db: Database, image_id: str, member: str) -> ImageMember | None:
    async with db.transaction() as session:
        return await session.get(ImageMember, (image_id, member))


async def count_members(db: Database, image_id: str) -> int:
    async with db.transaction() as session:
        total = await session.scalar(select(func.count()).where(
            ImageMember.image_id == image_id))
        return int(total or 0)


async def add_member(db: Database, image_id: str, member: str) -> ImageMember:
    """A pending membership; DuplicateMember when there is one already."""
    now = utcnow()
    row = ImageMember(image_id=image_id, member=member, status="pending",
                      created_at=now, updated_at=now)
    try:
        async with db.transaction() as session:
            session.add(row)
    except IntegrityError:
        raise DuplicateMember(member) from None
    return row


async def set_member_status(db: Database, image_id: str, member: str, status: str
                            ) -> ImageMember | None:
    async with db.transaction() as session:
        row = await session.get(ImageMember, (image_id, member))
        if row is None:
            return None
        row.status = status
        row.updated_at = utcnow()
    return row


async def delete_member(db: Database, image_id: str, member: str) -> bool:
    async with db.transaction() as session:
        result = await session.execute(delete(ImageMember).where(
            ImageMember.image_id == image_id, ImageMember.member == member))
        return bool(rows_matched(result))

