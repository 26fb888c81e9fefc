"""Puts the built test image (novalet-tiny) in the image service on first start."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from novalet.common.context import RequestContext
from novalet.db import identity as identity_records
from novalet.db import images as image_records
from novalet.image.testimage import builder
from novalet.service.api import ApiServices

LOG = logging.getLogger(__name__)
_CHUNK = 1 << 20


async def publish_test_image(services: ApiServices) -> str | None:
    """Upload novalet-tiny (and its kernel and ramdisk) as public images owned by the
    admin project, unless they are there already; the disk image's id, or None when
    the image hasn't been built (`novalet image build-test`)."""
    output = builder.default_output(services.conf.state_path)
    if not builder.outputs_exist(output):
        LOG.info("No test image at %s; build it with `novalet image build-test`", output)
        return None
    ctx = await _admin_context(services)
    ids: dict[str, str] = {}
    for upload in builder.uploads(output):
        ids[upload.name] = await _ensure_uploaded(services, ctx, upload, ids)
    return ids[builder.IMAGE_NAME]


async def _admin_context(services: ApiServices) -> RequestContext:
    project = await identity_records.find_project(services.db, "admin", "default")
    user = await identity_records.find_user(services.db, "admin", "default")
    assert project is not None and user is not None
    return RequestContext(user_id=user.id, project_id=project.id, roles=["admin"],
                          project_name="admin", user_name="admin")


async def _ensure_uploaded(services: ApiServices, ctx: RequestContext,
                           upload: builder.ImageUpload, ids: dict[str, str]) -> str:
    existing = await image_records.list_images(services.db, image_records.ImageQuery(
        viewer=None, match={"name": [upload.name]}, limit=1))
    if existing and existing[0].status == "active":
        return str(existing[0].id)
    body: dict[str, Any] = {"name": upload.name, "disk_format": upload.disk_format,
                            "container_format": upload.container_format,
                            "visibility": "public", **upload.properties}
    image = await services.images.create(ctx, body)
    await services.images.upload(ctx, image["id"], _chunks(upload.path))
    LOG.info("Uploaded %s (%s) as image %s", upload.name, upload.path.name, image["id"])
    return str(image["id"])


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk
