"""Image records: GET/POST /v2/images, GET/PATCH/DELETE /v2/images/{id}, and actions."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.image import listing, patch, schemas
from novalet.api.validation import validate


async def index(req: ApiRequest) -> dict[str, Any]:
    query = listing.parse(req.query, req.app.conf.get("api", "max_limit"))
    images, more = await req.app.images.list_images(req.ctx, query)
    next_marker = images[-1]["id"] if more and images else None
    return {"images": images, **listing.page_links(req.query, next_marker),
            "schema": "/v2/schemas/images"}


async def create(req: ApiRequest) -> Reply:
    body = await req.json_object()
    validate(body, schemas.IMAGE_CREATE)
    image = await req.app.images.create(req.ctx, body)
    location = f"{req.app.conf.public_url}/image/v2/images/{image['id']}"
    return Reply(image, 201, {"Location": location})


async def show(req: ApiRequest) -> dict[str, Any]:
    image: dict[str, Any] = await req.app.images.get(req.ctx, req.path["image_id"])
    return image


async def tasks(req: ApiRequest) -> dict[str, Any]:
    """GET /v2/images/{id}/tasks (Glance 2.12+): the image's asynchronous tasks. This
    image service has none (uploads finish in the request; no interoperable import),
    so a visible image's list is empty, and an image the caller can't see is a 404."""
    await req.app.images.get(req.ctx, req.path["image_id"])
    return {"tasks": []}


async def update(req: ApiRequest) -> dict[str, Any]:
    patch.check_media_type(req.raw.headers.get("content-type"), patch.MEDIA_TYPE)
    ops = patch.parse(await req.json())
    image: dict[str, Any] = await req.app.images.update(req.ctx, req.path["image_id"], ops)
    return image


async def delete(req: ApiRequest) -> Reply:
    await req.app.images.delete(req.ctx, req.path["image_id"])
    return Reply(None, 204)


async def deactivate(req: ApiRequest) -> Reply:
    await req.app.images.deactivate(req.ctx, req.path["image_id"])
    return Reply(None, 204)


async def reactivate(req: ApiRequest) -> Reply:
    await req.app.images.reactivate(req.ctx, req.path["image_id"])
    return Reply(None, 204)
