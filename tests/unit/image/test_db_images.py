"""Image listing in SQL: keyset paging under every sort key, and the filters."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from novalet.db import images as db_images
from novalet.db.engine import Database
from novalet.db.images import ImageQuery


async def _add(db: Database, name: str | None, **values: Any) -> str:
    image_id = str(uuid.uuid4())
    values.setdefault("owner", "p1")
    values.setdefault("visibility", "public")
    await db_images.create_image(db, {"id": image_id, "name": name, **values})
    return image_id


@pytest.fixture
async def seeded(db: Database) -> Database:
    for name, size in [("b", 30), ("a", 10), ("b", None), (None, 20), ("c", 10), ("a", 10),
                       ("b", 5)]:
        await _add(db, name, size=size)
    return db


async def _all_pages(db: Database, query: ImageQuery) -> list[str]:
    ids: list[str] = []
    marker = None
    while True:
        page = await db_images.list_images(db, dataclasses.replace(query, marker=marker))
        ids += [i.id for i in page]
        if len(page) < query.limit:
            return ids
        marker = page[-1].id


@pytest.mark.parametrize("sort", [
    [("name", "asc")], [("name", "desc")], [("size", "asc"), ("name", "desc")],
    [("created_at", "desc")], [("size", "desc")], [("updated_at", "asc")],
    [("name", "asc"), ("size", "asc"), ("id", "desc")],
])
@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_paging_visits_every_image_once_in_order(seeded: Database, limit: int,
                                                       sort: list[tuple[str, str]]) -> None:
    whole = await db_images.list_images(seeded, ImageQuery(viewer=None, sort=sort, limit=100))
    paged = await _all_pages(seeded, ImageQuery(viewer=None, sort=sort, limit=limit))
    assert paged == [i.id for i in whole]
    assert len(set(paged)) == 7


async def test_sort_by_name_puts_unnamed_first(seeded: Database) -> None:
    rows = await db_images.list_images(seeded, ImageQuery(viewer=None, sort=[("name", "asc")]))
    assert [r.name for r in rows] == [None, "a", "a", "b", "b", "b", "c"]


async def test_size_and_match_filters(seeded: Database) -> None:
    query = ImageQuery(viewer=None, size_min=10, size_max=20)
    assert sorted(r.size or 0 for r in await db_images.list_images(seeded, query)) == [10, 10, 10, 20]
    query = ImageQuery(viewer=None, match={"name": ["a", "c"]})
    assert sorted(r.name or "" for r in await db_images.list_images(seeded, query)) == ["a", "a", "c"]


async def test_tag_filter_needs_every_tag(db: Database) -> None:
    both = await _add(db, "both", tags=["red", "blue"])
    await _add(db, "red", tags=["red"])
    await _add(db, "quote", tags=['red", "blue'])
    rows = await db_images.list_images(db, ImageQuery(viewer=None, tags=["red", "blue"]))
    assert [r.id for r in rows] == [both]


async def test_property_filter_with_dotted_key(db: Database) -> None:
    hit = await _add(db, "x", properties={"owner_specified.openstack.md5": "abc", "os": "x"})
    await _add(db, "y", properties={"owner_specified.openstack.md5": "abd"})
    query = ImageQuery(viewer=None, properties={"owner_specified.openstack.md5": "abc"})
    assert [r.id for r in await db_images.list_images(db, query)] == [hit]


async def test_status_compare_and_swap(db: Database) -> None:
    image_id = await _add(db, "x")
    assert await db_images.set_status(db, image_id, "queued", "saving")
    assert not await db_images.set_status(db, image_id, "queued", "saving")
    assert (await db_images.get_image(db, image_id)).status == "saving"  # type: ignore[union-attr]
