"""The image service: visibility, create/update rules, the upload state machine, sharing."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from novalet import exceptions
from novalet.db.images import ImageQuery
from novalet.image import api as image_api
from novalet.image.api import ImageService, PatchOp
from tests.unit.image.helpers import admin, project, stream

OWNER = project("p1")


async def _image(service: ImageService, **body: Any) -> dict[str, Any]:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    return await service.create(OWNER, body)


async def _read(service: ImageService, image_id: str) -> bytes:
    data = await service.open_data(OWNER, image_id)
    assert data is not None
    return b"".join([block async for block in data.chunks])


# --- visibility -----------------------------------------------------------------

@pytest.fixture
async def catalog(service: ImageService) -> dict[str, str]:
    """Six images owned by p1; p2 accepted, p3 pending, p4 rejected on a shared one each."""
    ids = {}
    for name in ("public", "private", "community"):
        visibility = name
        ctx = admin() if name == "public" else OWNER
        ids[name] = (await service.create(ctx, {"name": name, "visibility": visibility,
                                                "owner": "p1"}))["id"]
    for name, member, status in (("shared_acc", "p2", "accepted"),
                                 ("shared_pend", "p3", "pending"),
                                 ("shared_rej", "p4", "rejected")):
        ids[name] = (await service.create(OWNER, {"name": name}))["id"]
        await service.add_member(OWNER, ids[name], member)
        if status != "pending":
            await service.update_member(project(member), ids[name], member, status)
    return ids


ALL = {"public", "private", "community", "shared_acc", "shared_pend", "shared_rej"}
# viewer -> (images it can GET, images in its default listing)
VISIBILITY_TABLE = {
    "p1": (ALL, ALL),
    "p2": ({"public", "community", "shared_acc"}, {"public", "shared_acc"}),
    "p3": ({"public", "community", "shared_pend"}, {"public"}),
    "p4": ({"public", "community", "shared_rej"}, {"public"}),
    "p5": ({"public", "community"}, {"public"}),
    "admin": (ALL, ALL),
}


def _ctx(viewer: str) -> Any:
    return admin() if viewer == "admin" else project(viewer)


@pytest.mark.parametrize("viewer", sorted(VISIBILITY_TABLE))
async def test_show_follows_visibility_table(service: ImageService, catalog: dict[str, str],
                                             viewer: str) -> None:
    visible = set()
    for name, image_id in catalog.items():
        try:
            await service.get(_ctx(viewer), image_id)
            visible.add(name)
        except image_api.ImageNotFound as exc:
            assert exc.message == f"Image {image_id} could not be found."
    assert visible == VISIBILITY_TABLE[viewer][0]


@pytest.mark.parametrize("viewer", sorted(VISIBILITY_TABLE))
async def test_default_listing_follows_visibility_table(
        service: ImageService, catalog: dict[str, str], viewer: str) -> None:
    images, more = await service.list_images(_ctx(viewer), ImageQuery(viewer=None))
    assert {i["name"] for i in images} == VISIBILITY_TABLE[viewer][1]
    assert more is False


@pytest.mark.parametrize("viewer,visibility,member_status,expected", [
    ("p1", "shared", "accepted", {"shared_acc", "shared_pend", "shared_rej"}),
    ("p2", "shared", "accepted", {"shared_acc"}),
    ("p3", "shared", "accepted", set()),
    ("p3", "shared", "pending", {"shared_pend"}),
    ("p4", "shared", "all", {"shared_rej"}),
    ("p5", "community", "accepted", {"community"}),
    ("p5", "private", "accepted", set()),
    ("p1", "private", "accepted", {"private"}),
    ("p2", "all", "accepted", {"public", "community", "shared_acc"}),
    ("admin", "shared", "accepted", {"shared_acc", "shared_pend", "shared_rej"}),
])
async def test_listing_filters_by_visibility_and_member_status(
        service: ImageService, catalog: dict[str, str], viewer: str, visibility: str,
        member_status: str, expected: set[str]) -> None:
    query = ImageQuery(viewer=None, visibility=visibility, member_status=member_status)
    images, _ = await service.list_images(_ctx(viewer), query)
    assert {i["name"] for i in images} == expected


async def test_seen_but_not_owned_is_403_unseen_is_404(service: ImageService,
                                                       catalog: dict[str, str]) -> None:
    with pytest.raises(image_api.ImageForbidden):
        await service.update(project("p5"), catalog["public"], [PatchOp("replace", "name", "x")])
    with pytest.raises(image_api.ImageNotFound):
        await service.update(project("p5"), catalog["private"], [PatchOp("replace", "name", "x")])
    with pytest.raises(image_api.ImageNotFound):
        await service.delete(project("p5"), catalog["private"])


# --- create ----------------------------------------------------------------------

async def test_create_defaults_and_properties(service: ImageService) -> None:
    image = await service.create(OWNER, {"name": "cirros", "hw_disk_bus": "virtio",
                                         "tags": ["a", "b", "a"]})
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["owner"] == "p1"
    assert image["hw_disk_bus"] == "virtio"
    assert image["tags"] == ["a", "b"]
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["created_at"] == image["updated_at"]
    assert (image["size"], image["checksum"], image["min_disk"]) == (None, None, 0)


async def test_only_admin_publishes(service: ImageService) -> None:
    with pytest.raises(exceptions.Forbidden, match="publicize_image"):
        await service.create(OWNER, {"visibility": "public"})
    image = await service.create(admin(), {"visibility": "public"})
    assert image["visibility"] == "public"
    shared = await service.create(OWNER, {})
    with pytest.raises(exceptions.Forbidden, match="publicize_image"):
        await service.update(OWNER, shared["id"], [PatchOp("replace", "visibility", "public")])


@pytest.mark.parametrize("name,error", [
    ("status", image_api.AttributeReadOnly), ("checksum", image_api.AttributeReadOnly),
    ("size", image_api.AttributeReadOnly), ("os_hash_value", image_api.AttributeReadOnly),
    ("locations", image_api.AttributeReserved), ("deleted", image_api.AttributeReserved),
])
async def test_create_refuses_read_only_and_reserved(service: ImageService, name: str,
                                                     error: type[Exception]) -> None:
    with pytest.raises(error):
        await service.create(OWNER, {name: "x"})


async def test_create_for_another_owner_needs_admin(service: ImageService) -> None:
    with pytest.raises(image_api.OwnerForbidden):
        await service.create(OWNER, {"owner": "p2"})
    assert (await service.create(admin(), {"owner": "p2"}))["owner"] == "p2"


async def test_duplicate_id_conflicts(service: ImageService) -> None:
    image_id = "d5b7a3e2-0000-4000-8000-000000000001"
    await service.create(OWNER, {"id": image_id})
    with pytest.raises(image_api.ImageExists):
        await service.create(OWNER, {"id": image_id})


# --- update ----------------------------------------------------------------------

async def test_patch_semantics(service: ImageService) -> None:
    image = await service.create(OWNER, {"name": "a", "k1": "v1"})
    updated = await service.update(OWNER, image["id"], [
        PatchOp("replace", "name", "b"), PatchOp("add", "k2", "v2"),
        PatchOp("add", "k1", "v1b"), PatchOp("remove", "k2"), PatchOp("add", "k3", "v3"),
        PatchOp("replace", "min_ram", 512), PatchOp("replace", "tags", ["x", "x", "y"])])
    assert (updated["name"], updated["k1"], updated["k3"]) == ("b", "v1b", "v3")
    assert "k2" not in updated
    assert (updated["min_ram"], updated["tags"]) == (512, ["x", "y"])


@pytest.mark.parametrize("op,error", [
    (PatchOp("replace", "missing", "v"), image_api.PropertyConflict),
    (PatchOp("remove", "missing"), image_api.PropertyConflict),
    (PatchOp("remove", "name"), image_api.AttributeNotRemovable),
    (PatchOp("replace", "id", "x"), image_api.AttributeReadOnly),
    (PatchOp("replace", "status", "active"), image_api.AttributeReadOnly),
    (PatchOp("add", "locations", []), image_api.AttributeReserved),
])
async def test_patch_errors_leave_the_image_unchanged(service: ImageService, op: PatchOp,
                                                      error: type[Exception]) -> None:
    image = await service.create(OWNER, {"name": "a"})
    with pytest.raises(error):
        await service.update(OWNER, image["id"], [PatchOp("replace", "name", "b"), op])
    assert (await service.get(OWNER, image["id"]))["name"] == "a"


async def test_formats_only_change_while_queued(service: ImageService) -> None:
    image = await _image(service)
    await service.upload(OWNER, image["id"], stream([b"data"]))
    with pytest.raises(image_api.FormatLocked):
        await service.update(OWNER, image["id"], [PatchOp("replace", "disk_format", "qcow2")])


async def test_property_limit(service: ImageService) -> None:
    image = await service.create(OWNER, {})
    ops = [PatchOp("add", f"k{i}", "v") for i in range(image_api.MAX_PROPERTIES + 1)]
    with pytest.raises(image_api.LimitExceeded) as err:
        await service.update(OWNER, image["id"], ops)
    assert err.value.code == 413


async def test_tags(service: ImageService) -> None:
    image = await service.create(OWNER, {"tags": ["a"]})
    await service.add_tag(OWNER, image["id"], "b")
    await service.add_tag(OWNER, image["id"], "b")
    await service.remove_tag(OWNER, image["id"], "a")
    assert (await service.get(OWNER, image["id"]))["tags"] == ["b"]
    with pytest.raises(image_api.TagNotFound):
        await service.remove_tag(OWNER, image["id"], "a")


# --- delete ----------------------------------------------------------------------

async def test_protected_image_is_not_deleted(service: ImageService) -> None:
    image = await _image(service, protected=True)
    with pytest.raises(image_api.ImageProtected) as err:
        await service.delete(OWNER, image["id"])
    assert err.value.code == 403
    await service.update(OWNER, image["id"], [PatchOp("replace", "protected", False)])
    await service.delete(OWNER, image["id"])
    with pytest.raises(image_api.ImageNotFound):
        await service.get(OWNER, image["id"])


async def test_delete_removes_data(service: ImageService) -> None:
    image = await _image(service)
    await service.upload(OWNER, image["id"], stream([b"abc"]))
    assert await service.store.exists(image["id"])
    await service.delete(OWNER, image["id"])
    assert not await service.store.exists(image["id"])


# --- upload and download ---------------------------------------------------------

async def test_upload_activates_with_checksums(service: ImageService) -> None:
    image = await _image(service)
    data = b"0123456789" * 100_000
    shown = await service.upload(OWNER, image["id"], stream([data[:400_000], data[400_000:]]))
    assert shown["status"] == "active"
    assert shown["size"] == shown["virtual_size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert (shown["os_hash_algo"], shown["os_hash_value"]) == (
        "sha512", hashlib.sha512(data).hexdigest())
    assert await _read(service, image["id"]) == data


async def test_upload_to_active_image_conflicts(service: ImageService) -> None:
    image = await _image(service)
    await service.upload(OWNER, image["id"], stream([b"one"]))
    with pytest.raises(image_api.ImageStatusConflict) as err:
        await service.upload(OWNER, image["id"], stream([b"two"]))
    assert err.value.code == 409
    assert await _read(service, image["id"]) == b"one"


async def test_upload_needs_formats(service: ImageService) -> None:
    image = await service.create(OWNER, {"disk_format": "raw"})
    with pytest.raises(image_api.InvalidImage, match="container_format"):
        await service.upload(OWNER, image["id"], stream([b"x"]))
    assert (await service.get(OWNER, image["id"]))["status"] == "queued"


async def test_failed_upload_returns_to_queued(service: ImageService) -> None:
    image = await _image(service)
    seen: list[str] = []

    async def broken() -> AsyncIterator[bytes]:
        seen.append((await service.get(OWNER, image["id"]))["status"])
        yield b"partial"
        raise ConnectionResetError()

    with pytest.raises(ConnectionResetError):
        await service.upload(OWNER, image["id"], broken())
    assert seen == ["saving"]
    after = await service.get(OWNER, image["id"])
    assert (after["status"], after["size"]) == ("queued", None)
    assert await service.open_data(OWNER, image["id"]) is None
    await service.upload(OWNER, image["id"], stream([b"second try"]))
    assert await _read(service, image["id"]) == b"second try"


async def test_image_deleted_during_upload(service: ImageService) -> None:
    image = await _image(service)

    async def deleting() -> AsyncIterator[bytes]:
        yield b"abc"
        await service.delete(OWNER, image["id"])

    with pytest.raises(image_api.ImageDeletedDuringUpload) as err:
        await service.upload(OWNER, image["id"], deleting())
    assert err.value.code == 410
    assert not await service.store.exists(image["id"])


async def test_non_owner_member_cannot_upload(service: ImageService) -> None:
    image = await _image(service)
    await service.add_member(OWNER, image["id"], "p2")
    with pytest.raises(image_api.ImageForbidden):
        await service.upload(project("p2"), image["id"], stream([b"x"]))


def _qcow2_header(size: int, backing: int = 0, version: int = 3, features: int = 0) -> bytes:
    header = b"QFI\xfb" + struct.pack(">IQI I Q", version, backing, 0, 16, size)
    return header.ljust(72, b"\0") + struct.pack(">Q", features) + b"\0" * 100


async def test_qcow2_virtual_size_is_read_from_the_header(service: ImageService) -> None:
    image = await _image(service, disk_format="qcow2")
    shown = await service.upload(OWNER, image["id"], stream([_qcow2_header(10 * 2**30)]))
    assert shown["virtual_size"] == 10 * 2**30


@pytest.mark.parametrize("header", [_qcow2_header(2**30, backing=512),
                                    _qcow2_header(2**30, features=4)])
async def test_qcow2_pointing_at_other_files_is_refused(service: ImageService,
                                                       header: bytes) -> None:
    image = await _image(service, disk_format="qcow2")
    with pytest.raises(image_api.UnsafeImageData):
        await service.upload(OWNER, image["id"], stream([header]))
    assert (await service.get(OWNER, image["id"]))["status"] == "queued"
    assert not await service.store.exists(image["id"])


async def test_download_rules(service: ImageService) -> None:
    image = await _image(service)
    assert await service.open_data(OWNER, image["id"]) is None
    await service.upload(OWNER, image["id"], stream([b"bytes"]))
    await service.deactivate(OWNER, image["id"])
    with pytest.raises(image_api.ImageDeactivated):
        await service.open_data(OWNER, image["id"])
    data = await service.open_data(admin(), image["id"])
    assert data is not None and data.size == 5
    await data.chunks.aclose()  # type: ignore[attr-defined]
    await service.reactivate(OWNER, image["id"])
    assert await _read(service, image["id"]) == b"bytes"


async def test_deactivate_needs_an_active_image(service: ImageService) -> None:
    image = await _image(service)
    with pytest.raises(image_api.StatusTransitionForbidden):
        await service.deactivate(OWNER, image["id"])


# --- members ---------------------------------------------------------------------

async def test_member_lifecycle(service: ImageService) -> None:
    image = await service.create(OWNER, {"name": "s"})
    member = await service.add_member(OWNER, image["id"], "p2")
    assert (member["member_id"], member["status"]) == ("p2", "pending")
    with pytest.raises(image_api.MemberExists):
        await service.add_member(OWNER, image["id"], "p2")
    await service.add_member(OWNER, image["id"], "p3")
    assert len(await service.list_members(OWNER, image["id"])) == 2
    assert [m["member_id"] for m in await service.list_members(project("p2"), image["id"])] \
        == ["p2"]
    with pytest.raises(image_api.MemberStatusForbidden):
        await service.update_member(OWNER, image["id"], "p2", "accepted")
    with pytest.raises(image_api.ImageForbidden):
        await service.add_member(project("p2"), image["id"], "p9")
    with pytest.raises(image_api.InvalidImage):
        await service.update_member(project("p2"), image["id"], "p2", "maybe")
    accepted = await service.update_member(project("p2"), image["id"], "p2", "accepted")
    assert accepted["status"] == "accepted"
    with pytest.raises(image_api.MemberNotFound):
        await service.get_member(project("p2"), image["id"], "p3")
    await service.remove_member(OWNER, image["id"], "p2")
    with pytest.raises(image_api.ImageNotFound):
        await service.get(project("p2"), image["id"])


async def test_only_shared_images_have_members(service: ImageService) -> None:
    image = await service.create(OWNER, {"visibility": "private"})
    with pytest.raises(image_api.NotShared):
        await service.add_member(OWNER, image["id"], "p2")
    with pytest.raises(image_api.NotShared):
        await service.list_members(OWNER, image["id"])


async def test_deleting_an_image_drops_its_members(service: ImageService) -> None:
    image = await service.create(OWNER, {})
    await service.add_member(OWNER, image["id"], "p2")
    await service.delete(OWNER, image["id"])
    again = await service.create(OWNER, {"id": image["id"]})
    assert await service.list_members(OWNER, again["id"]) == []
