"""Handlers for /images/{id}/metadata: an image's properties through Nova's image proxy
(404 from 2.39; use the image API). Writes count against the metadata_items quota."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.images import check_version
from novalet.api.compute.schemas import images as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, validate
from novalet.compute.image_metadata import ImageMetadata, ImageMetadataKeyNotFound
from novalet.policy import enforce

REMOVED = "2.39"


def _service(req: ApiRequest) -> ImageMetadata:
    return ImageMetadata(req.app.images, req.app.quotas)


async def _metadata(req: ApiRequest) -> dict[str, Any]:
    check_version(req, REMOVED)
    enforce(req.ctx, "image:get_image")
    return await _service(req).get(req.ctx, req.path["image_id"])


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    return {"metadata": await _metadata(req)}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    metadata, key = await _metadata(req), req.path["key"]
    if key not in metadata:
        raise ImageMetadataKeyNotFound(image_id=req.path["image_id"], key=key)
    return {"meta": {key: metadata[key]}}


async def _set_all(req: ApiRequest, replace: bool) -> dict[str, Any]:
    check_version(req, REMOVED)
    body = await req.json_object()
    validate(body, schemas.METADATA_ALL)
    metadata = await _service(req).update(req.ctx, req.path["image_id"], body["metadata"],
                                          replace)
    return {"metadata": body["metadata"] if replace else metadata}


@accepts(body=schemas.METADATA_ALL)
async def create(req: ApiRequest) -> dict[str, Any]:
    """POST: merge the items into the image's metadata; all of it comes back."""
    return await _set_all(req, replace=False)


@accepts(body=schemas.METADATA_ALL)
async def update_all(req: ApiRequest) -> dict[str, Any]:
    """PUT: the items become the image's whole metadata."""
    return await _set_all(req, replace=True)


@accepts(body=schemas.METADATA_ONE)
async def update(req: ApiRequest) -> dict[str, Any]:
    """PUT /metadata/{key} {"meta": {key: value}}."""
    check_version(req, REMOVED)
    body = await req.json_object()
    validate(body, schemas.METADATA_ONE)
    if req.path["key"] not in body["meta"]:
        raise ValidationError(reason="Request body and URI mismatch")
    await _service(req).update(req.ctx, req.path["image_id"], body["meta"], replace=False)
    return {"meta": body["meta"]}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    check_version(req, REMOVED)
    await _service(req).delete(req.ctx, req.path["image_id"], req.path["key"])
    return Reply(None, 204)
