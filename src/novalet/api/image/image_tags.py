"""Single tags: PUT and DELETE /v2/images/{id}/tags/{tag}."""

from __future__ import annotations

from novalet.api.handler import ApiRequest, Reply


async def add(req: ApiRequest) -> Reply:
    await req.app.images.add_tag(req.ctx, req.path["image_id"], req.path["tag"])
    return Reply(None, 204)


async def delete(req: ApiRequest) -> Reply:
    await req.app.images.remove_tag(req.ctx, req.path["image_id"], req.path["tag"])
    return Reply(None, 204)
