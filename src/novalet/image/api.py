"""The image service: who may see and change which image, uploads, downloads and sharing.

Visibility follows Glance v2: a project sees public and community images, its
own images, and shared images it is a member of; admins see every image. An
image a caller may not see does not exist for that caller (404); one it may
see but not change answers 403.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novalet import config, exceptions, policy
from novalet.common import timeutils
from novalet.common.context import RequestContext
from novalet.db import images as db_images
from novalet.db.engine import Database
from novalet.db.models import Image, ImageMember
from novalet.image import store as image_store

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
UNFINISHED = ("queued", "saving")  # an image whose data never (fully) came
STATUSES = ("queued", "saving", "active", "killed", "deleted", "pending_delete",
            "deactivated", "uploading", "importing")
MEMBER_STATUSES = ("pending", "accepted", "rejected")

# Attributes stored in their own columns and changeable through the API.
BASE_ATTRIBUTES = ("name", "visibility", "protected", "os_hidden", "min_disk", "min_ram",
                   "disk_format", "container_format", "tags", "owner")
READ_ONLY = ("id", "status", "checksum", "size", "virtual_size", "created_at",
             "updated_at", "file", "self", "schema", "os_hash_algo", "os_hash_value",
             "direct_url", "stores")
RESERVED = ("deleted", "deleted_at", "location", "locations")
FORMAT_ATTRIBUTES = ("disk_format", "container_format")

MAX_PROPERTIES = 128
MAX_TAGS = 128
MAX_MEMBERS = 128
MAX_TAG_LENGTH = 255


class ImageNotFound(exceptions.NotFound):
    msg_fmt = "Image %(image_id)s could not be found."


class ImageForbidden(exceptions.Forbidden):
    msg_fmt = "You are not authorized to complete %(action)s action."


class AttributeReadOnly(exceptions.Forbidden):
    msg_fmt = "Attribute '%(name)s' is read-only."


class AttributeReserved(exceptions.Forbidden):
    msg_fmt = "Attribute '%(name)s' is reserved."


class ImageProtected(exceptions.Forbidden):
    msg_fmt = "Image %(image_id)s is protected and cannot be deleted."


class ImageExists(exceptions.Conflict):
    msg_fmt = "Image with identifier %(image_id)s already exists!"


class ImageStatusConflict(exceptions.Conflict):
    msg_fmt = ("Image %(image_id)s is %(status)s; data can only be uploaded to an image "
               "in status queued.")


class PropertyConflict(exceptions.Conflict):
    msg_fmt = "Property %(name)s does not exist."


class InvalidImage(exceptions.Invalid):
    msg_fmt = "%(reason)s"


class InvalidMarker(exceptions.Invalid):
    msg_fmt = "Invalid marker. Image %(marker)s could not be found."


class UnsafeImageData(exceptions.Invalid):
    msg_fmt = ("Image data refused: %(reason)s. Upload a self-contained image "
               "(for example `qemu-img convert -O qcow2` it first).")


class ImageDeletedDuringUpload(exceptions.NotFound):
    msg_fmt = ("Image %(image_id)s could not be found after upload; it was deleted "
               "while its data was being uploaded.")
    code = 410


class ImageDeactivated(exceptions.Forbidden):
    msg_fmt = ("The requested image has been deactivated. Image data download is "
               "forbidden.")


class LimitExceeded(exceptions.NovaletError):
    msg_fmt = "Maximum number of %(what)s exceeded: at most %(limit)d are allowed."
    code = 413


class MemberNotFound(exceptions.NotFound):
    msg_fmt = "Project %(member)s is not a member of image %(image_id)s."


class MemberExists(exceptions.Conflict):
    msg_fmt = "Member %(member)s is duplicated for image %(image_id)s."


class NotShared(exceptions.Forbidden):
    msg_fmt = "Only shared images have members."


class TagNotFound(exceptions.NotFound):
    msg_fmt = "Tag %(tag)s not found on image %(image_id)s."


class AttributeNotRemovable(exceptions.Forbidden):
    msg_fmt = "Property %(name)s may not be removed."


class FormatLocked(exceptions.Forbidden):
    msg_fmt = "Attribute %(name)s can be only replaced for a queued image."


class OwnerForbidden(exceptions.Forbidden):
    msg_fmt = "You are not permitted to create or move images owned by '%(owner)s'."


class StatusTransitionForbidden(exceptions.Forbidden):
    msg_fmt = "Not allowed to %(action)s image in status '%(status)s'."


class MemberStatusForbidden(exceptions.Forbidden):
    msg_fmt = ("Only the member project %(member)s can accept or reject image "
               "%(image_id)s.")


@dataclass(frozen=True)
class PatchOp:
    """One JSON-patch operation: op is add, replace or remove; `name` is the top-level
    attribute or property it touches."""

    op: str
    name: str
    value: Any = None


@dataclass
class ImageData:
    """An image's bytes, ready to stream; the file is already open."""

    image_id: str
    size: int | None
    checksum: str | None
    chunks: AsyncIterator[bytes]


def image_view(image: Image) -> dict[str, Any]:
    """The image as Glance v2 shows it: its columns, its links and its free-form
    properties flattened beside them."""
    base = {
        "id": image.id, "name": image.name, "status": image.status,
        "visibility": image.visibility, "protected": image.protected,
        "os_hidden": image.os_hidden, "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo, "os_hash_value": image.os_hash_value,
        "owner": image.owner, "size": image.size, "virtual_size": image.virtual_size,
        "min_ram": image.min_ram, "min_disk": image.min_disk,
        "disk_format": image.disk_format, "container_format": image.container_format,
        "created_at": timeutils.isotime(image.created_at),
        "updated_at": timeutils.isotime(image.updated_at or image.created_at),
        "tags": list(image.tags or []),
        "self": f"/v2/images/{image.id}", "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
    }
    return {**(image.properties or {}), **base}


# What image_view sets beside the free-form properties.
_VIEW_FIELDS = frozenset((
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
    "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "min_ram", "min_disk",
    "disk_format", "container_format", "created_at", "updated_at", "tags", "self", "file",
    "schema"))


def properties_of(view: dict[str, Any]) -> dict[str, Any]:
    """The free-form properties of an image_view (what Nova's image proxy calls the
    image's metadata)."""
    return {k: v for k, v in view.items() if k not in _VIEW_FIELDS}


def member_view(member: ImageMember) -> dict[str, Any]:
    return {"image_id": member.image_id, "member_id": member.member,
            "status": member.status, "created_at": timeutils.isotime(member.created_at),
            "updated_at": timeutils.isotime(member.updated_at or member.created_at),
            "schema": "/v2/schemas/member"}


class ImageService:
    """Images for every front-end (image API, compute, dashboard)."""

    def __init__(self, db: Database, store_dir: Path, conf: config.Config) -> None:
        self.db = db
        self.conf = conf
        self.store = image_store.ImageStore(store_dir,
                                            size_cap=conf.get("image", "image_size_cap"))

    # --- reading ------------------------------------------------------------

    async def get(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """The image as the API shows it; ImageNotFound when it is missing or not
        visible to ctx."""
        return image_view(await self._visible(ctx, image_id))

    async def list_images(self, ctx: RequestContext, query: db_images.ImageQuery
                          ) -> tuple[list[dict[str, Any]], bool]:
        """One page of images ctx may list, and whether another page follows."""
        if query.marker is not None:
            try:
                await self._visible(ctx, query.marker)
            except ImageNotFound:
                raise InvalidMarker(marker=query.marker) from None
        viewer = None if ctx.is_admin else ctx.project_id
        page = dataclasses.replace(query, viewer=viewer, limit=query.limit + 1)
        rows = await db_images.list_images(self.db, page)
        return [image_view(r) for r in rows[:query.limit]], len(rows) > query.limit

    async def _visible(self, ctx: RequestContext, image_id: str) -> Image:
        image = await db_images.get_image(self.db, image_id)
        if image is None or not await self._can_see(ctx, image):
            raise ImageNotFound(image_id=image_id)
        return image

    async def _can_see(self, ctx: RequestContext, image: Image) -> bool:
        if ctx.is_admin or image.visibility in ("public", "community"):
            return True
        if ctx.project_id is not None and image.owner == ctx.project_id:
            return True
        if image.visibility != "shared" or ctx.project_id is None:
            return False
        return await db_images.get_member(self.db, image.id, ctx.project_id) is not None

    async def _owned(self, ctx: RequestContext, image_id: str, action: str) -> Image:
        """The image when ctx owns it (or is admin); 404 when unseen, 403 when only seen."""
        image = await self._visible(ctx, image_id)
        if not (ctx.is_admin or image.owner == ctx.project_id):
            raise ImageForbidden(action=action)
        policy.enforce(ctx, f"image:{action}", image.owner)
        return image

    # --- writing metadata ---------------------------------------------------

    async def create(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """A queued image from a validated request body; unknown keys become properties."""
        policy.enforce(ctx, "image:add_image")
        _check_writable(body)
        values = {k: v for k, v in body.items() if k in BASE_ATTRIBUTES}
        values["owner"] = self._owner_for(ctx, body.get("owner"))
        values["visibility"] = body.get("visibility") or "shared"
        _allow_visibility(ctx, values["visibility"], current=None)
        values["tags"] = _unique_tags(body.get("tags") or [])
        values["properties"] = {k: v for k, v in body.items()
                                if k not in BASE_ATTRIBUTES and k != "id"}
        _check_limits(values["properties"], values["tags"])
        values["id"] = body.get("id") or str(uuid.uuid4())
        try:
            image = await db_images.create_image(self.db, values)
        except db_images.DuplicateImage:
            raise ImageExists(image_id=values["id"]) from None
        return image_view(image)

    def _owner_for(self, ctx: RequestContext, requested: str | None) -> str | None:
        if requested is None or requested == ctx.project_id:
            return ctx.project_id
        if not ctx.is_admin:
            raise OwnerForbidden(owner=requested)
        return requested

    async def update(self, ctx: RequestContext, image_id: str, ops: list[PatchOp]
                     ) -> dict[str, Any]:
        """Apply JSON-patch operations atomically, as Glance's PATCH does."""
        image = await self._owned(ctx, image_id, "modify_image")
        for op in ops:
            _check_op(ctx, image, op)
        updated = await db_images.update_image(self.db, image_id,
                                               lambda row: _apply(row, ops))
        if updated is None:
            raise ImageNotFound(image_id=image_id)
        return image_view(updated)

    async def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        await self._owned(ctx, image_id, "modify_image")
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidImage(reason=f"Tag is longer than {MAX_TAG_LENGTH} characters.")
        await self._mutate(image_id, lambda row: _set_tags(row, [*row.tags, tag]))

    async def remove_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        await self._owned(ctx, image_id, "modify_image")

        def drop(row: Image) -> None:
            if tag not in row.tags:
                raise TagNotFound(tag=tag, image_id=image_id)
            row.tags = [t for t in row.tags if t != tag]
        await self._mutate(image_id, drop)

    async def _mutate(self, image_id: str, change: Any) -> Image:
        updated = await db_images.update_image(self.db, image_id, change)
        if updated is None:
            raise ImageNotFound(image_id=image_id)
        return updated

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Delete the image, its memberships and its data; protected images refuse."""
        image = await self._owned(ctx, image_id, "delete_image")
        if image.protected:
            raise ImageProtected(image_id=image_id)
        if not await db_images.delete_image(self.db, image_id):
            raise ImageNotFound(image_id=image_id)
        await self.store.delete(image_id)

    async def discard_unfinished(self, image_id: str) -> bool:
        """Delete the image if it never got its data (queued, or saving when the upload
        is cut short): a snapshot whose server went away. An image that became active
        is kept. True when deleted."""
        if not await db_images.delete_image(self.db, image_id, UNFINISHED):
            return False
        await self.store.delete(image_id)
        return True

    async def unfinished_snapshots(self, instance_uuid: str) -> list[str]:
        """Ids of the snapshot images of `instance_uuid` still waiting for their data."""
        rows = await db_images.list_images(self.db, db_images.ImageQuery(
            viewer=None, match={"status": list(UNFINISHED)},
            properties={"instance_uuid": instance_uuid}, limit=1000))
        return [r.id for r in rows]

    async def deactivate(self, ctx: RequestContext, image_id: str) -> None:
        await self._switch(ctx, image_id, "deactivate", "active", "deactivated")

    async def reactivate(self, ctx: RequestContext, image_id: str) -> None:
        await self._switch(ctx, image_id, "reactivate", "deactivated", "active")

    async def _switch(self, ctx: RequestContext, image_id: str, action: str,
                      expected: str, status: str) -> None:
        image = await self._owned(ctx, image_id, action)
        if image.status == status:
            return
        if not await db_images.set_status(self.db, image_id, expected, status):
            raise StatusTransitionForbidden(action=action, status=image.status)

    # --- data ---------------------------------------------------------------

    async def upload(self, ctx: RequestContext, image_id: str,
                     chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        """Stream data into a queued image: queued -> saving -> active. A failed or
        cut-off upload leaves the image queued with no data."""
        image = await self._owned(ctx, image_id, "upload_image")
        if not (image.disk_format and image.container_format):
            raise InvalidImage(reason="Properties disk_format and container_format must be "
                                      "set prior to saving data.")
        if not await db_images.set_status(self.db, image_id, "queued", "saving"):
            raise ImageStatusConflict(image_id=image_id, status=image.status)
        try:
            stored = await self.store.write(image_id, chunks)
            fields = _data_fields(image.disk_format, stored)
        except BaseException:
            await self.store.delete(image_id)
            await db_images.set_status(self.db, image_id, "saving", "queued")
            raise
        if not await db_images.set_status(self.db, image_id, "saving", "active", **fields):
            await self.store.delete(image_id)
            raise ImageDeletedDuringUpload(image_id=image_id)
        return await self.get(ctx, image_id)

    async def open_data(self, ctx: RequestContext, image_id: str) -> ImageData | None:
        """The image's bytes as a stream, or None when it has no data yet."""
        image = await self._visible(ctx, image_id)
        if image.status == "deactivated" and not ctx.is_admin:
            raise ImageDeactivated()
        if image.status not in ("active", "deactivated"):
            return None
        chunks = await self.store.read(image_id)
        return ImageData(image_id, image.size, image.checksum, chunks)

    # --- members ------------------------------------------------------------

    async def list_members(self, ctx: RequestContext, image_id: str
                           ) -> list[dict[str, Any]]:
        """Every member for the owner; a member sees only its own membership."""
        image = await self._shared(ctx, image_id)
        members = await db_images.list_members(self.db, image_id)
        if not self._is_owner(ctx, image):
            members = [m for m in members if m.member == ctx.project_id]
        return [member_view(m) for m in members]

    async def get_member(self, ctx: RequestContext, image_id: str, member: str
                         ) -> dict[str, Any]:
        image = await self._shared(ctx, image_id)
        row = await db_images.get_member(self.db, image_id, member)
        if row is None or not (self._is_owner(ctx, image) or member == ctx.project_id):
            raise MemberNotFound(member=member, image_id=image_id)
        return member_view(row)

    async def add_member(self, ctx: RequestContext, image_id: str, member: str
                         ) -> dict[str, Any]:
        image = await self._shared(ctx, image_id)
        if not self._is_owner(ctx, image):
            raise ImageForbidden(action="add_member")
        if await db_images.count_members(self.db, image_id) >= MAX_MEMBERS:
            raise LimitExceeded(what="image members", limit=MAX_MEMBERS)
        try:
            row = await db_images.add_member(self.db, image_id, member)
        except db_images.DuplicateMember:
            raise MemberExists(member=member, image_id=image_id) from None
        return member_view(row)

    async def update_member(self, ctx: RequestContext, image_id: str, member: str,
                            status: str) -> dict[str, Any]:
        """Accept or reject a share: only the member project itself (or an admin) may."""
        image = await self._shared(ctx, image_id)
        if status not in MEMBER_STATUSES:
            raise InvalidImage(reason=f"Invalid status: {status}; expected one of "
                                      f"{', '.join(MEMBER_STATUSES)}.")
        if not (ctx.is_admin or member == ctx.project_id):
            if self._is_owner(ctx, image):
                raise MemberStatusForbidden(member=member, image_id=image_id)
            raise MemberNotFound(member=member, image_id=image_id)
        row = await db_images.set_member_status(self.db, image_id, member, status)
        if row is None:
            raise MemberNotFound(member=member, image_id=image_id)
        return member_view(row)

    async def remove_member(self, ctx: RequestContext, image_id: str, member: str) -> None:
        image = await self._shared(ctx, image_id)
        if not self._is_owner(ctx, image):
            if member == ctx.project_id:
                raise ImageForbidden(action="delete_member")
            raise MemberNotFound(member=member, image_id=image_id)
        if not await db_images.delete_member(self.db, image_id, member):
            raise MemberNotFound(member=member, image_id=image_id)

    async def _shared(self, ctx: RequestContext, image_id: str) -> Image:
        image = await self._visible(ctx, image_id)
        if image.visibility != "shared":
            raise NotShared()
        return image

    @staticmethod
    def _is_owner(ctx: RequestContext, image: Image) -> bool:
        return ctx.is_admin or (ctx.project_id is not None and image.owner == ctx.project_id)


# --- rules on attributes ------------------------------------------------------

def _check_writable(names: Iterable[str], *, allow_id: bool = True) -> None:
    for name in names:
        if name == "id" and allow_id:
            continue
        if name in READ_ONLY:
            raise AttributeReadOnly(name=name)
        if name in RESERVED:
            raise AttributeReserved(name=name)


def _allow_visibility(ctx: RequestContext, visibility: str, current: str | None) -> None:
    if visibility == "public" and current != "public":
        policy.enforce(ctx, "image:publicize_image")


def _check_op(ctx: RequestContext, image: Image, op: PatchOp) -> None:
    """Rules that depend on who asks and on the image as it is now."""
    _check_writable([op.name], allow_id=False)
    if op.op == "remove" and op.name in BASE_ATTRIBUTES:
        raise AttributeNotRemovable(name=op.name)
    if op.name == "visibility":
        _allow_visibility(ctx, op.value, current=image.visibility)
    if op.name == "owner" and op.value != image.owner and not ctx.is_admin:
        raise OwnerForbidden(owner=op.value)
    if op.name in FORMAT_ATTRIBUTES and image.status != "queued":
        raise FormatLocked(name=op.name)


def _apply(image: Image, ops: list[PatchOp]) -> None:
    """Apply operations to a loaded row (inside its transaction)."""
    properties = dict(image.properties or {})
    for op in ops:
        if op.name == "tags":
            _set_tags(image, op.value)
        elif op.name in BASE_ATTRIBUTES:
            setattr(image, op.name, op.value)
        elif op.op == "add":
            properties[op.name] = op.value
        elif op.name not in properties:
            raise PropertyConflict(name=op.name)
        elif op.op == "replace":
            properties[op.name] = op.value
        else:
            del properties[op.name]
    _check_limits(properties, image.tags)
    image.properties = properties


def _set_tags(image: Image, tags: list[str]) -> None:
    unique = _unique_tags(tags)
    _check_limits({}, unique)
    image.tags = unique


def _unique_tags(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def _check_limits(properties: dict[str, Any], tags: list[str]) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise LimitExceeded(what="image properties", limit=MAX_PROPERTIES)
    if len(tags) > MAX_TAGS:
        raise LimitExceeded(what="image tags", limit=MAX_TAGS)


# --- what the data says about itself --------------------------------------------

_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_DATA_FILE = 1 << 2


def _data_fields(disk_format: str | None, stored: image_store.StoredData) -> dict[str, Any]:
    """Column values a completed upload sets; refuses qcow2 files that point elsewhere."""
    fields = image_store.describe(stored)
    fields["virtual_size"] = _virtual_size(disk_format, stored)
    return fields


def _virtual_size(disk_format: str | None, stored: image_store.StoredData) -> int | None:
    if disk_format in ("raw", "iso"):
        return stored.size
    head = stored.head
    if disk_format != "qcow2" or head[:4] != _QCOW2_MAGIC or len(head) < 32:
        return None
    version = int.from_bytes(head[4:8], "big")
    if int.from_bytes(head[8:16], "big"):
        raise UnsafeImageData(reason="the qcow2 image names a backing file")
    if version >= 3 and len(head) >= 80 and int.from_bytes(head[72:80], "big") & \
            _QCOW2_DATA_FILE:
        raise UnsafeImageData(reason="the qcow2 image keeps its data in an external file")
    return int.from_bytes(head[24:32], "big")
