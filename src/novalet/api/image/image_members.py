"""Image sharing: /v2/images/{id}/members and /v2/images/{id}/members/{member_id}."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.image import schemas
from novalet.api.validation import validate


async def index(req: ApiRequest) -> dict[str, Any]:
    members = await req.app.images.list_members(req.ctx, req.path["image_id"])
    return {"members": members, "schema": "/v2/schemas/members"}


async def create(req: ApiRequest) -> dict[str, Any]:
    """Glance answers 200 (not 201) with the new, pending membership."""
    body = await req.json_object()
    validate(body, schemas.MEMBER_CREATE)
    member: dict[str, Any] = await req.app.images.add_member(
        req.ctx, req.path["image_id"], body["member"])
    return member


async def show(req: ApiRequest) -> dict[str, Any]:
    member: dict[str, Any] = await req.app.images.get_member(
        req.ctx, req.path["image_id"], req.path["member_id"])
    return member


async def update(req: ApiRequest) -> dict[str, Any]:
    body = await req.json_object()
    validate(body, schemas.MEMBER_UPDATE)
    member: dict[str, Any] = await req.app.images.update_member(
        req.ctx, req.path["image_id"], req.path["member_id"], body["status"])
    return member


async def delete(req: ApiRequest) -> Reply:
    await req.app.images.remove_member(req.ctx, req.path["image_id"], req.path["member_id"])
    return Reply(None, 204)
