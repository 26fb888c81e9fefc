"""The image API (Glance v2 subset) over HTTP on the whole in-process cloud."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import pytest

from tests.functional.conftest import Api

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
async def alt(api: Api) -> str:
    """A second project 'alt' with a member user 'alt' (password 'alt'); its id."""
    project = await api.request("POST", "/identity/v3/projects", user="admin", json={
        "project": {"name": "alt", "domain_id": "default"}})
    assert project.status_code == 201, project.text
    project_id: str = project.json()["project"]["id"]
    user = await api.request("POST", "/identity/v3/users", user="admin", json={
        "user": {"name": "alt", "password": "alt", "domain_id": "default",
                 "default_project_id": project_id}})
    assert user.status_code == 201, user.text
    roles = (await api.request("GET", "/identity/v3/roles", user="admin")).json()["roles"]
    for role in roles:
        if role["name"] in ("member", "reader"):
            grant = await api.request(
                "PUT", f"/identity/v3/projects/{project_id}/users/"
                       f"{user.json()['user']['id']}/roles/{role['id']}", user="admin")
            assert grant.status_code == 204, grant.text
    return project_id


async def _create(api: Api, user: str = "demo", **body: Any) -> dict[str, Any]:
    body.setdefault("disk_format", "qcow2")
    body.setdefault("container_format", "bare")
    resp = await api.request("POST", "/image/v2/images", user=user, json=body)
    assert resp.status_code == 201, resp.text
    image: dict[str, Any] = resp.json()
    return image


async def _upload(api: Api, image_id: str, data: bytes, user: str = "demo") -> httpx.Response:
    return await api.request("PUT", f"/image/v2/images/{image_id}/file", user=user,
                             content=data, headers=OCTET)


async def _patch(api: Api, image_id: str, ops: list[dict[str, Any]], user: str = "demo",
                 headers: dict[str, str] | None = None) -> httpx.Response:
    return await api.request("PATCH", f"/image/v2/images/{image_id}", user=user, json=ops,
                             headers=headers or PATCH)


async def _names(api: Api, user: str, query: str = "") -> set[str]:
    resp = await api.request("GET", f"/image/v2/images{query}", user=user)
    assert resp.status_code == 200, resp.text
    return {i["name"] for i in resp.json()["images"]}


# --- discovery -------------------------------------------------------------------

async def test_version_discovery(api: Api) -> None:
    root = await api.client.get("/image/")
    assert root.status_code == 300
    versions = root.json()["versions"]
    assert versions[0]["id"] == "v2.7" and versions[0]["status"] == "CURRENT"
    assert versions[0]["links"] == [{"rel": "self", "href": "http://novalet.test/image/v2/"}]
    assert {v["id"] for v in versions} >= {"v2.0", "v2.6"}
    listing = await api.client.get("/image/versions")
    assert listing.status_code == 200 and listing.json() == root.json()


async def test_token_required(api: Api) -> None:
    resp = await api.client.get("/image/v2/images")
    assert resp.status_code == 401
    assert resp.json()["code"] == 401


async def test_schemas(api: Api) -> None:
    image = (await api.request("GET", "/image/v2/schemas/image")).json()
    assert image["name"] == "image"
    assert "qcow2" in image["properties"]["disk_format"]["enum"]
    assert image["additionalProperties"]["type"] == "string"
    assert (await api.request("GET", "/image/v2/schemas/images")).json()["name"] == "images"
    assert (await api.request("GET", "/image/v2/schemas/members")).status_code == 200


# --- create, upload, download ----------------------------------------------------

async def test_create_upload_download_roundtrip(api: Api) -> None:
    created = await api.request("POST", "/image/v2/images", json={
        "name": "cirros", "disk_format": "qcow2", "container_format": "bare",
        "min_ram": 64, "tags": ["boot"], "hw_disk_bus": "virtio"})
    assert created.status_code == 201
    image = created.json()
    assert created.headers["Location"].endswith(f"/image/v2/images/{image['id']}")
    assert (image["status"], image["visibility"], image["hw_disk_bus"]) == (
        "queued", "shared", "virtio")
    empty = await api.request("GET", f"/image/v2/images/{image['id']}/file")
    assert empty.status_code == 204

    data = os.urandom(3 * 1024 * 1024 + 17)
    uploaded = await _upload(api, image["id"], data)
    assert uploaded.status_code == 204 and uploaded.content == b""

    shown = (await api.request("GET", f"/image/v2/images/{image['id']}")).json()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()

    download = await api.request("GET", f"/image/v2/images/{image['id']}/file")
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["Content-MD5"] == shown["checksum"]
    assert download.headers["Content-Length"] == str(len(data))
    assert download.headers["Content-Type"] == "application/octet-stream"

    again = await _upload(api, image["id"], b"other")
    assert again.status_code == 409
    assert "queued" in again.json()["message"]


async def test_upload_needs_octet_stream(api: Api) -> None:
    image = await _create(api)
    resp = await api.request("PUT", f"/image/v2/images/{image['id']}/file", content=b"x",
                             headers={"Content-Type": "application/json"})
    assert resp.status_code == 415


@pytest.mark.parametrize("body,status,words", [
    ({"disk_format": "floppy"}, 400, "disk_format"),
    ({"container_format": "zip"}, 400, "container_format"),
    ({"min_disk": -1}, 400, "min_disk"),
    ({"custom": 5}, 400, "custom"),
    ({"id": "not-a-uuid"}, 400, "id"),
    ({"status": "active"}, 403, "Attribute 'status' is read-only."),
    ({"locations": []}, 403, "Attribute 'locations' is reserved."),
    ({"visibility": "public"}, 403, "publicize_image"),
])
async def test_create_refusals(api: Api, body: dict[str, Any], status: int,
                               words: str) -> None:
    resp = await api.request("POST", "/image/v2/images", json=body)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["message"]


async def test_admin_may_publish_and_every_project_sees_it(api: Api, alt: str) -> None:
    image = await _create(api, user="admin", name="pub", visibility="public")
    assert "pub" in await _names(api, "alt")
    assert "pub" in await _names(api, "demo")
    assert image["visibility"] == "public"


# --- update ----------------------------------------------------------------------

async def test_patch_operations(api: Api) -> None:
    image = await _create(api, name="a", os_distro="cirros")
    resp = await _patch(api, image["id"], [
        {"op": "replace", "path": "/name", "value": "b"},
        {"op": "add", "path": "/hw_rng~1model", "value": "virtio"},
        {"op": "remove", "path": "/os_distro"},
        {"op": "replace", "path": "/min_disk", "value": 2},
        {"op": "replace", "path": "/tags", "value": ["x", "y"]},
        {"op": "replace", "path": "/visibility", "value": "private"}])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["name"], body["hw_rng/model"], body["min_disk"]) == ("b", "virtio", 2)
    assert "os_distro" not in body
    assert (body["tags"], body["visibility"]) == (["x", "y"], "private")
    assert body["updated_at"] >= body["created_at"]


@pytest.mark.parametrize("ops,status,words", [
    ([{"op": "replace", "path": "/status", "value": "active"}], 403, "read-only"),
    ([{"op": "replace", "path": "/id", "value": "x"}], 403, "read-only"),
    ([{"op": "remove", "path": "/name"}], 403, "may not be removed"),
    ([{"op": "replace", "path": "/nothing", "value": "v"}], 409, "does not exist"),
    ([{"op": "move", "path": "/name", "from": "/x"}], 400, "op"),
    ([{"op": "replace", "path": "/a/b", "value": "v"}], 400, "JSON pointer"),
    ([{"op": "replace", "path": "/min_ram", "value": "lots"}], 400, "min_ram"),
    ([{"op": "add", "path": "/prop", "value": 1}], 400, "prop"),
    ({"op": "add"}, 400, "array"),
])
async def test_patch_refusals(api: Api, ops: Any, status: int, words: str) -> None:
    image = await _create(api, name="keep")
    resp = await _patch(api, image["id"], ops)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["message"]
    assert (await api.request("GET", f"/image/v2/images/{image['id']}")).json()["name"] == \
        "keep"


async def test_patch_needs_its_media_type(api: Api) -> None:
    image = await _create(api)
    resp = await _patch(api, image["id"], [], headers={"Content-Type": "application/json"})
    assert resp.status_code == 415


async def test_tags_one_by_one(api: Api) -> None:
    image = await _create(api, tags=["a"])
    assert (await api.request("PUT", f"/image/v2/images/{image['id']}/tags/b")).status_code \
        == 204
    assert (await api.request("DELETE", f"/image/v2/images/{image['id']}/tags/a")).status_code \
        == 204
    assert (await api.request("DELETE", f"/image/v2/images/{image['id']}/tags/a")).status_code \
        == 404
    assert (await api.request("GET", f"/image/v2/images/{image['id']}")).json()["tags"] == ["b"]


# --- delete ----------------------------------------------------------------------

async def test_protected_then_deleted(api: Api) -> None:
    image = await _create(api, protected=True)
    await _upload(api, image["id"], b"data")
    url = f"/image/v2/images/{image['id']}"
    refused = await api.request("DELETE", url)
    assert refused.status_code == 403
    assert refused.json()["message"] == f"Image {image['id']} is protected and cannot be deleted."
    await _patch(api, image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert (await api.request("DELETE", url)).status_code == 204
    assert (await api.request("GET", url)).status_code == 404
    assert (await api.request("GET", url + "/file")).status_code == 404
    assert not (api.cloud.conf.state_path / "images" / image["id"]).exists()


# --- visibility between projects ----------------------------------------------------

async def test_private_images_stay_private(api: Api, alt: str) -> None:
    image = await _create(api, name="secret", visibility="private")
    url = f"/image/v2/images/{image['id']}"
    assert (await api.request("GET", url, user="alt")).status_code == 404
    assert (await api.request("GET", url + "/file", user="alt")).status_code == 404
    assert (await api.request("DELETE", url, user="alt")).status_code == 404
    assert "secret" not in await _names(api, "alt")
    assert "secret" in await _names(api, "admin")


async def test_sharing_with_another_project(api: Api, alt: str) -> None:
    image = await _create(api, name="shared-one")
    await _upload(api, image["id"], b"payload")
    url = f"/image/v2/images/{image['id']}"
    assert (await api.request("GET", url, user="alt")).status_code == 404

    added = await api.request("POST", url + "/members", json={"member": alt})
    assert added.status_code == 200
    assert added.json()["status"] == "pending" and added.json()["member_id"] == alt
    dup = await api.request("POST", url + "/members", json={"member": alt})
    assert dup.status_code == 409

    # pending: the member may look, but it is not in its listing yet
    assert (await api.request("GET", url, user="alt")).status_code == 200
    assert "shared-one" not in await _names(api, "alt")
    assert "shared-one" in await _names(api, "alt", "?visibility=shared&member_status=pending")

    owner_accepts = await api.request("PUT", f"{url}/members/{alt}", json={"status": "accepted"})
    assert owner_accepts.status_code == 403
    accepted = await api.request("PUT", f"{url}/members/{alt}", user="alt",
                                 json={"status": "accepted"})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert "shared-one" in await _names(api, "alt")
    assert "shared-one" in await _names(api, "alt", "?visibility=shared")

    download = await api.request("GET", url + "/file", user="alt")
    assert download.content == b"payload"
    assert (await _patch(api, image["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                         user="alt")).status_code == 403
    assert (await api.request("POST", url + "/members", user="alt",
                              json={"member": "someone"})).status_code == 403
    own_view = await api.request("GET", url + "/members", user="alt")
    assert [m["member_id"] for m in own_view.json()["members"]] == [alt]

    assert (await api.request("DELETE", f"{url}/members/{alt}")).status_code == 204
    assert (await api.request("GET", url, user="alt")).status_code == 404


async def test_members_only_for_shared_images(api: Api, alt: str) -> None:
    image = await _create(api, visibility="private")
    resp = await api.request("POST", f"/image/v2/images/{image['id']}/members",
                             json={"member": alt})
    assert resp.status_code == 403
    assert resp.json()["message"] == "Only shared images have members."


async def test_community_images_are_found_by_filter(api: Api, alt: str) -> None:
    image = await _create(api, name="comm", visibility="community")
    assert "comm" not in await _names(api, "alt")
    assert "comm" in await _names(api, "alt", "?visibility=community")
    assert (await api.request("GET", f"/image/v2/images/{image['id']}", user="alt")
            ).status_code == 200


# --- listing ---------------------------------------------------------------------

async def test_paging_follows_next_links(api: Api) -> None:
    for name in ("e", "c", "a", "d", "b"):
        await _create(api, name=name)
    seen: list[str] = []
    url: str | None = "/image/v2/images?limit=2&sort=name:asc"
    pages = 0
    while url:
        body = (await api.request("GET", url)).json()
        assert body["schema"] == "/v2/schemas/images"
        assert body["first"] == "/v2/images?limit=2&sort=name%3Aasc"
        seen += [i["name"] for i in body["images"]]
        url = "/image" + body["next"] if "next" in body else None
        pages += 1
    assert seen == ["a", "b", "c", "d", "e"]
    assert pages == 3


async def test_listing_filters(api: Api) -> None:
    small = await _create(api, name="small", tags=["red", "blue"], disk_format="raw")
    await _upload(api, small["id"], b"x" * 10)
    big = await _create(api, name="big", tags=["red"])
    await _upload(api, big["id"], b"x" * 1000)
    await _create(api, name="hidden", os_hidden=True)
    assert await _names(api, "demo") == {"small", "big"}
    assert await _names(api, "demo", "?os_hidden=true") == {"hidden"}
    assert await _names(api, "demo", "?tag=red&tag=blue") == {"small"}
    assert await _names(api, "demo", "?size_min=100") == {"big"}
    assert await _names(api, "demo", "?disk_format=raw") == {"small"}
    assert await _names(api, "demo", "?name=in:small,hidden") == {"small"}
    assert await _names(api, "demo", "?status=active&sort_key=size&sort_dir=asc") == \
        {"small", "big"}


@pytest.mark.parametrize("query,words", [
    ("?sort_key=colour", "Invalid sort key"),
    ("?sort=name:up", "Invalid sort direction"),
    ("?sort=name&sort_key=size", "cannot be combined"),
    ("?limit=-1", "limit"),
    ("?limit=many", "limit"),
    ("?visibility=everyone", "visibility"),
    ("?member_status=maybe", "member_status"),
    ("?os_hidden=perhaps", "os_hidden"),
    ("?marker=00000000-0000-4000-8000-000000000000", "Invalid marker"),
])
async def test_listing_refusals(api: Api, query: str, words: str) -> None:
    resp = await api.request("GET", f"/image/v2/images{query}")
    assert resp.status_code == 400, resp.text
    assert words in resp.json()["message"]


async def test_deactivated_image_data_is_admin_only(api: Api) -> None:
    image = await _create(api)
    await _upload(api, image["id"], b"bits")
    url = f"/image/v2/images/{image['id']}"
    assert (await api.request("POST", url + "/actions/deactivate")).status_code == 204
    assert (await api.request("GET", url)).json()["status"] == "deactivated"
    assert (await api.request("GET", url + "/file")).status_code == 403
    assert (await api.request("GET", url + "/file", user="admin")).content == b"bits"
    assert (await api.request("POST", url + "/actions/reactivate")).status_code == 204
    assert (await api.request("GET", url + "/file")).content == b"bits"


async def test_compute_side_get(api: Api, alt: str) -> None:
    """ImageService.get is what the compute API calls: same view, same visibility."""
    from novalet.common.context import RequestContext
    from novalet.image.api import ImageNotFound

    image = await _create(api, name="for-boot", visibility="private")
    images = api.cloud.services.images
    owner = (await api.request("GET", f"/image/v2/images/{image['id']}")).json()["owner"]
    got = await images.get(RequestContext(project_id=owner, roles=["member"]), image["id"])
    assert got["name"] == "for-boot" and got["self"] == f"/v2/images/{image['id']}"
    with pytest.raises(ImageNotFound, match=f"Image {image['id']} could not be found."):
        await images.get(RequestContext(project_id=alt, roles=["member"]), image["id"])


async def test_an_images_tasks_are_an_empty_list(api: Api, alt: str) -> None:
    """GET /v2/images/{id}/tasks (Tempest's createBackup test waits on it): uploads
    finish in their request here, so there are none; another project's private
    image is a 404, as its GET is."""
    image = await _create(api, name="no-tasks")
    await _upload(api, image["id"], b"payload")
    url = f"/image/v2/images/{image['id']}/tasks"
    resp = await api.request("GET", url)
    assert resp.status_code == 200 and resp.json() == {"tasks": []}, resp.text
    assert (await api.request("GET", url, user="alt")).status_code == 404
    assert (await api.request("GET", "/image/v2/images/no-such-image/tasks")
            ).status_code == 404
