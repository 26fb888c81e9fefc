"""Nova's image proxy: /images (up to 2.35) and /images/{id}/metadata (up to 2.38),
over the image service with the caller's visibility, in Nova's view."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.functional.conftest import Api

IMG = "/compute/v2.1/images"
OLD = "2.35"


async def _image(api: Api, name: str, user: str = "demo", upload: bool = True,
                 **extra: Any) -> dict[str, Any]:
    resp = await api.request("POST", "/image/v2/images", user=user, json={
        "name": name, "disk_format": "raw", "container_format": "bare", **extra})
    assert resp.status_code == 201, resp.text
    image: dict[str, Any] = resp.json()
    if upload:
        resp = await api.request("PUT", f"/image/v2/images/{image['id']}/file", user=user,
                                 content=b"*" * 1024,
                                 headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 204, resp.text
    return image


async def test_detail_view(api: Api) -> None:
    image = await _image(api, "detailed", min_ram=512, min_disk=1, os_distro="debian",
                         auto_disk_config="true")
    resp = await api.request("GET", f"{IMG}/{image['id']}", version=OLD)
    assert resp.status_code == 200, resp.text
    body = resp.json()["image"]
    assert (body["id"], body["name"], body["status"], body["progress"]) == (
        image["id"], "detailed", "ACTIVE", 100)
    assert (body["minRam"], body["minDisk"], body["OS-EXT-IMG-SIZE:size"]) == (512, 1, 1024)
    assert body["metadata"] == {"os_distro": "debian", "auto_disk_config": "true"}
    assert body["OS-DCF:diskConfig"] == "AUTO"
    assert body["created"].endswith("Z") and body["updated"].endswith("Z")
    assert [link["rel"] for link in body["links"]] == ["self", "bookmark", "alternate"]
    assert body["links"][0]["href"] == f"http://novalet.test/compute/v2.1/images/{image['id']}"
    assert body["links"][2]["type"] == "application/vnd.openstack.image"
    assert "server" not in body
    queued = await _image(api, "queued", upload=False)
    body = (await api.request("GET", f"{IMG}/{queued['id']}")).json()["image"]
    assert (body["status"], body["progress"], body["OS-EXT-IMG-SIZE:size"]) == (
        "SAVING", 25, None)


async def test_a_snapshot_links_its_server(api: Api) -> None:
    server_id = "6f0b1e4e-0d2b-4bcb-9c1a-6a7f57f1a001"
    snap = await _image(api, "snap", instance_uuid=server_id, image_type="snapshot")
    body = (await api.request("GET", f"{IMG}/{snap['id']}")).json()["image"]
    assert body["server"]["id"] == server_id
    assert body["server"]["links"][0]["href"].endswith(f"/compute/v2.1/servers/{server_id}")
    for server in (server_id, f"http://novalet.test/compute/v2.1/servers/{server_id}"):
        listed = (await api.request("GET", f"{IMG}?server={server}")).json()["images"]
        assert [i["id"] for i in listed] == [snap["id"]]
    listed = (await api.request("GET", f"{IMG}?type=snapshot")).json()["images"]
    assert [i["id"] for i in listed] == [snap["id"]]


async def test_list_filters_and_paging(api: Api) -> None:
    one = await _image(api, "one", min_ram=256)
    await asyncio.sleep(1.1)  # changes-since has whole seconds
    two = await _image(api, "two")
    queued = await _image(api, "three", upload=False)

    async def ids(query: str, path: str = IMG) -> list[str]:
        resp = await api.request("GET", f"{path}{query}", version=OLD)
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()["images"]]

    assert set(await ids("")) == {one["id"], two["id"], queued["id"]}
    assert await ids("?name=one") == [one["id"]]
    assert set(await ids("?status=ACTIVE")) == {one["id"], two["id"]}
    assert await ids("?status=SAVING") == []  # a queued image is status queued
    assert await ids("?minRam=256") == [one["id"]]
    two_created = (await api.request("GET", f"{IMG}/{two['id']}")).json()["image"]["created"]
    assert one["id"] not in await ids(f"?changes-since={two_created}", IMG + "/detail")
    assert two["id"] in await ids(f"?changes-since={two_created}", IMG + "/detail")
    resp = await api.request("GET", f"{IMG}/detail?limit=1")
    page = resp.json()
    assert len(page["images"]) == 1 and "metadata" in page["images"][0]
    [link] = page["images_links"]
    assert link["rel"] == "next" and f"marker={page['images'][0]['id']}" in link["href"]
    assert "/compute/v2.1/images/detail?limit=1" in link["href"]
    rest = await ids("?marker=" + page["images"][0]["id"])
    assert page["images"][0]["id"] not in rest and len(rest) == 2
    basic = (await api.request("GET", IMG)).json()["images"][0]
    assert set(basic) == {"id", "name", "links"}


async def test_list_refusals(api: Api) -> None:
    for query in ("?limit=-1", "?limit=x", "?minRam=big", "?changes-since=yesterday",
                  "?marker=no-such-image"):
        resp = await api.request("GET", IMG + query)
        assert resp.status_code == 400, (query, resp.text)


async def test_visibility_is_the_image_services(api: Api, other: str) -> None:
    private = await _image(api, "private", visibility="private")
    public = await _image(api, "public", user="admin", visibility="public")
    listed = [i["id"] for i in (await api.request("GET", IMG, user="other")).json()["images"]]
    assert public["id"] in listed and private["id"] not in listed
    assert (await api.request("GET", f"{IMG}/{private['id']}", user="other")).status_code == 404
    assert (await api.request("DELETE", f"{IMG}/{private['id']}", user="other")
            ).status_code == 404
    assert (await api.request("DELETE", f"{IMG}/{public['id']}")).status_code == 403
    resp = await api.request("DELETE", f"{IMG}/{private['id']}")
    assert resp.status_code == 204, resp.text
    assert (await api.request("GET", f"{IMG}/{private['id']}")).status_code == 404
    assert (await api.request("GET", f"{IMG}/no-such-image")).status_code == 404


async def test_the_proxy_ends_at_2_36(api: Api) -> None:
    image = await _image(api, "versioned")
    for method, path in (("GET", IMG), ("GET", IMG + "/detail"), ("GET", f"{IMG}/{image['id']}"),
                         ("DELETE", f"{IMG}/{image['id']}")):
        assert (await api.request(method, path, version="2.36")).status_code == 404
    assert (await api.request("GET", f"{IMG}/{image['id']}", version=OLD)).status_code == 200


async def test_metadata_crud(api: Api) -> None:
    image = await _image(api, "meta", os_distro="debian")
    M = f"{IMG}/{image['id']}/metadata"
    resp = await api.request("GET", M, version="2.38")
    assert resp.status_code == 200 and resp.json() == {"metadata": {"os_distro": "debian"}}
    resp = await api.request("POST", M, json={"metadata": {"a": "1", "os_distro": "alpine"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"] == {"a": "1", "os_distro": "alpine"}
    resp = await api.request("PUT", f"{M}/b", json={"meta": {"b": "2"}})
    assert resp.status_code == 200 and resp.json() == {"meta": {"b": "2"}}
    assert (await api.request("GET", f"{M}/b")).json() == {"meta": {"b": "2"}}
    resp = await api.request("DELETE", f"{M}/a")
    assert resp.status_code == 204, resp.text
    assert (await api.request("GET", M)).json()["metadata"] == {"os_distro": "alpine",
                                                                "b": "2"}
    resp = await api.request("PUT", M, json={"metadata": {"only": "this"}})
    assert resp.status_code == 200 and resp.json() == {"metadata": {"only": "this"}}
    shown = (await api.request("GET", f"/image/v2/images/{image['id']}")).json()
    assert shown["only"] == "this" and "b" not in shown and shown["name"] == "meta"


async def test_metadata_refusals(api: Api, other: str) -> None:
    image = await _image(api, "meta", visibility="public", user="admin")
    M = f"{IMG}/{image['id']}/metadata"
    assert (await api.request("GET", f"{M}/missing")).status_code == 404
    assert (await api.request("DELETE", f"{M}/missing", user="admin")).status_code == 404
    assert (await api.request("GET", f"{IMG}/no-such-image/metadata")).status_code == 404
    resp = await api.request("PUT", f"{M}/a", user="admin", json={"meta": {"b": "1"}})
    assert resp.status_code == 400 and "mismatch" in resp.text
    for body in ({}, {"metadata": "x"}, {"metadata": {"k": 1}}, {"metadata": {"": "v"}},
                 {"metadata": {}, "other": 1}):
        resp = await api.request("POST", M, user="admin", json=body)
        assert resp.status_code == 400, (body, resp.text)
    resp = await api.request("PUT", f"{M}/a", user="admin", json={"meta": {"a": "1", "b": "2"}})
    assert resp.status_code == 400
    resp = await api.request("POST", M, user="admin", json={"metadata": {"min_ram": "x"}})
    assert resp.status_code == 400 and "attribute" in resp.text
    # a project that can see the image but doesn't own it
    resp = await api.request("POST", M, user="other", json={"metadata": {"a": "1"}})
    assert resp.status_code == 403, resp.text


async def test_metadata_quota_is_403(api: Api) -> None:
    image = await _image(api, "quota")
    M = f"{IMG}/{image['id']}/metadata"
    items = {f"k{i}": "v" for i in range(128)}
    assert (await api.request("PUT", M, json={"metadata": items})).status_code == 200
    resp = await api.request("POST", M, json={"metadata": {"one-more": "v"}})
    assert resp.status_code == 403, resp.text
    assert resp.json()["forbidden"]["message"] == "Image metadata limit exceeded"  # Nova's
    items["k128"] = "v"
    assert (await api.request("PUT", M, json={"metadata": items})).status_code == 403
    assert len((await api.request("GET", M)).json()["metadata"]) == 128


async def test_metadata_ends_at_2_39(api: Api) -> None:
    image = await _image(api, "versioned")
    M = f"{IMG}/{image['id']}/metadata"
    assert (await api.request("GET", M, version="2.38")).status_code == 200
    for method, path, body in (("GET", M, None), ("POST", M, {"metadata": {}}),
                               ("PUT", M, {"metadata": {}}), ("GET", f"{M}/k", None),
                               ("PUT", f"{M}/k", {"meta": {"k": "v"}}),
                               ("DELETE", f"{M}/k", None)):
        resp = await api.request(method, path, version="2.39", json=body)
        assert resp.status_code == 404, (method, path)


async def test_delete_with_a_blank_id_is_not_found(api: Api) -> None:
    """Tempest's test_delete_image_blank_id: DELETE /images/ is Nova's 404 (no route),
    not a 405 from the list's route."""
    resp = await api.request("DELETE", f"{IMG}/")
    assert resp.status_code == 404, resp.text
