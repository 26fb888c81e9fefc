"""Handlers for /v2.0/{collection}/{id}/tags[/{tag}] (Neutron's standard-attr-tag)
over network/tags.py, which knows the collections that take tags; and the `tags`
attribute and tag filters of those collections' views and lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from novalet.api.handler import ApiRequest, Reply


def _where(req: ApiRequest) -> tuple[str, str]:
    return req.path["kind"], req.path["resource_id"]


async def index(req: ApiRequest) -> dict[str, Any]:
    return {"tags": await req.app.tags.list_tags(req.ctx, *_where(req))}


async def show(req: ApiRequest) -> Reply:
    await req.app.tags.has_tag(req.ctx, *_where(req), req.path["tag"])
    return Reply(None, 204)


async def replace(req: ApiRequest) -> dict[str, Any]:
    """PUT {"tags": [...]}: the resource's tags become these."""
    body = await req.json()
    tags = body.get("tags") if isinstance(body, dict) else None
    return {"tags": await req.app.tags.replace_tags(req.ctx, *_where(req), tags)}


async def add(req: ApiRequest) -> Reply:
    await req.app.tags.add_tag(req.ctx, *_where(req), req.path["tag"])
    return Reply(None, 201)


async def delete_all(req: ApiRequest) -> Reply:
    await req.app.tags.remove_all(req.ctx, *_where(req))
    return Reply(None, 204)


async def delete(req: ApiRequest) -> Reply:
    await req.app.tags.remove_tag(req.ctx, *_where(req), req.path["tag"])
    return Reply(None, 204)


async def with_tags(req: ApiRequest, kind: str, views: Sequence[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """The views with their `tags` (one query for all of them)."""
    found = await req.app.tags.tags_of(kind, [v["id"] for v in views])
    return [{**v, "tags": found.get(v["id"], [])} for v in views]


async def tagged(req: ApiRequest, kind: str, view: dict[str, Any]) -> dict[str, Any]:
    """One view with its `tags`."""
    (result,) = await with_tags(req, kind, [view])
    return result
