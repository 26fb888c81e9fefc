"""An image's metadata as the compute API's image proxy sees it: its free-form properties.

The image service keeps them and decides who may change them (404 for an image
the caller can't see, 403 for one it may only see). The compute API adds
Nova's one rule of its own: the properties an image is left with must fit the
caller's metadata_items quota (403). Keys naming an image attribute (name,
min_ram, visibility...) are not properties: a 400.
"""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.compute.quotas import QuotaEngine
from novalet.image.api import BASE_ATTRIBUTES, ImageService, PatchOp, properties_of


class ImageMetadataKeyNotFound(exceptions.NotFound):
    msg_fmt = "Image %(image_id)s has no metadata key %(key)s."


class NotAProperty(exceptions.Invalid):
    msg_fmt = ("Metadata key %(key)s names an image attribute, not a property; change it "
               "through the image API.")


class ImageMetadata:
    def __init__(self, images: ImageService, quotas: QuotaEngine) -> None:
        self.images = images
        self.quotas = quotas

    async def get(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        return properties_of(await self.images.get(ctx, image_id))

    async def update(self, ctx: RequestContext, image_id: str, items: dict[str, str],
                     replace: bool) -> dict[str, Any]:
        """Set `items` (replace: and drop every other key); the properties after."""
        current = await self.get(ctx, image_id)
        for key in items:
            if key in BASE_ATTRIBUTES:
                raise NotAProperty(key=key)
        after = dict(items) if replace else {**current, **items}
        await self.quotas.check_image_metadata(ctx.project_id or "", len(after))
        ops = [PatchOp("add", key, value) for key, value in items.items()]
        if replace:
            ops += [PatchOp("remove", key) for key in current if key not in items]
        return properties_of(await self.images.update(ctx, image_id, ops))

    async def delete(self, ctx: RequestContext, image_id: str, key: str) -> None:
        if key not in await self.get(ctx, image_id):
            raise ImageMetadataKeyNotFound(image_id=image_id, key=key)
        await self.images.update(ctx, image_id, [PatchOp("remove", key)])
