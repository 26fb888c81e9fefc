"""createImage, rescue, rebuild and resize through the API, with the fake driver."""

import asyncio
from typing import Any

from novalet.common.context import RequestContext
from novalet.compute.states import PowerState
from novalet.db import placement
from tests.functional.conftest import Api, boot, ensure_image, wait_for

S = "/compute/v2.1/servers"


async def _action(api: Api, sid: str, body: dict[str, Any], version: str = "2.100") -> Any:
    return await api.request("POST", f"{S}/{sid}/action", json=body, version=version)


async def _wait_image_active(api: Api, image_id: str) -> dict[str, Any]:
    for _ in range(200):
        image = (await api.request("GET", f"/image/v2/images/{image_id}")).json()
        if image["status"] == "active":
            return dict(image)
        await asyncio.sleep(0.02)
    raise AssertionError(f"image stuck: {image}")


async def test_create_image_uploads_a_snapshot_that_boots(api: Api) -> None:
    sid = (await boot(api, "origin"))["id"]
    resp = await _action(api, sid, {"createImage": {"name": "snap", "metadata": {"k": "v"}}})
    assert resp.status_code == 202, resp.text
    image_id = resp.json()["image_id"]
    image = await _wait_image_active(api, image_id)
    assert image["name"] == "snap" and image["k"] == "v"
    assert image["instance_uuid"] == sid and image["image_type"] == "snapshot"
    data = (await api.request("GET", f"/image/v2/images/{image_id}/file")).content
    assert data == f"fake snapshot of {sid}\n".encode()
    await wait_for(api, sid, "ACTIVE")
    second = await boot(api, "from-snapshot", imageRef=image_id)
    assert second["image"]["id"] == image_id
    resp = await _action(api, sid, {"createImage": {"name": "old"}}, version="2.44")
    assert resp.status_code == 202 and "/image/v2/images/" in resp.headers["Location"]


async def test_rescue_and_unrescue(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"rescue": {"adminPass": "s3cret"}})
    assert resp.status_code == 200 and resp.json() == {"adminPass": "s3cret"}
    await wait_for(api, sid, "RESCUE")
    assert sid in api.cloud.compute.driver.rescued  # type: ignore[attr-defined]
    resp = await _action(api, sid, {"rescue": None})
    assert resp.status_code == 409
    resp = await _action(api, sid, {"unrescue": None})
    assert resp.status_code == 202
    await wait_for(api, sid, "ACTIVE")


async def test_rebuild_keeps_id_and_takes_new_image(api: Api) -> None:
    server = await boot(api, "before", metadata={"a": "1"})
    old_image = await ensure_image(api)
    resp = await api.request("POST", "/image/v2/images", user="admin", json={
        "name": "second", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"})
    new_image = resp.json()["id"]
    await api.request("PUT", f"/image/v2/images/{new_image}/file", user="admin",
                      content=b"other", headers={"Content-Type": "application/octet-stream"})
    resp = await _action(api, server["id"], {"rebuild": {
        "imageRef": new_image, "name": "after", "metadata": {"b": "2"}}})
    assert resp.status_code == 202, resp.text
    body = resp.json()["server"]
    assert body["id"] == server["id"] and body["name"] == "after"
    assert body["status"] == "REBUILD" and body["adminPass"]
    rebuilt = await wait_for(api, server["id"], "ACTIVE")
    assert rebuilt["image"]["id"] == new_image != old_image
    assert rebuilt["metadata"] == {"b": "2"}
    resp = await _action(api, server["id"], {"rebuild": {"imageRef": "nope"}})
    assert resp.status_code == 400


async def test_rebuild_of_a_stopped_server_leaves_it_shutoff(api: Api) -> None:
    """Tempest's test_rebuild_server_in_stop_state: SHUTOFF before, SHUTOFF after."""
    sid = (await boot(api))["id"]
    assert (await _action(api, sid, {"os-stop": None})).status_code == 202
    await wait_for(api, sid, "SHUTOFF")
    image = await ensure_image(api)
    resp = await _action(api, sid, {"rebuild": {"imageRef": image}})
    assert resp.status_code == 202, resp.text
    server = await wait_for(api, sid, "SHUTOFF")
    assert server["OS-EXT-STS:vm_state"] == "stopped"
    assert server["OS-EXT-STS:power_state"] == 4 and server["OS-EXT-STS:task_state"] is None
    info = await api.cloud.compute.driver.get_info(sid)
    assert info.power_state == PowerState.SHUTDOWN
    assert (await _action(api, sid, {"os-start": None})).status_code == 202
    await wait_for(api, sid, "ACTIVE")


async def test_resize_confirm_and_revert_move_allocations(api: Api) -> None:
    db = api.cloud.services.db
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"resize": {"flavorRef": "2"}})
    assert resp.status_code == 202, resp.text
    server = await wait_for(api, sid, "VERIFY_RESIZE")
    assert server["flavor"]["original_name"] == "m1.small"
    assert await placement.allocations_of(db, placement.resize_consumer(sid)) == {
        "VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}
    resp = await _action(api, sid, {"confirmResize": None})
    assert resp.status_code == 204
    server = await wait_for(api, sid, "ACTIVE")
    assert await placement.allocations_of(db, sid) == {"VCPU": 1, "MEMORY_MB": 2048,
                                                       "DISK_GB": 20}
    assert await placement.allocations_of(db, placement.resize_consumer(sid)) == {}
    resp = await _action(api, sid, {"resize": {"flavorRef": "3"}})
    await wait_for(api, sid, "VERIFY_RESIZE")
    resp = await _action(api, sid, {"revertResize": None})
    assert resp.status_code == 202
    server = await wait_for(api, sid, "ACTIVE")
    assert server["flavor"]["original_name"] == "m1.small"
    assert await placement.allocations_of(db, placement.resize_consumer(sid)) == {}


async def test_resize_refusals(api: Api) -> None:
    sid = (await boot(api))["id"]
    for body, status in (({"resize": {"flavorRef": "1"}}, 400),
                         ({"resize": {"flavorRef": "999"}}, 400),
                         ({"resize": {}}, 400), ({"confirmResize": None}, 409),
                         ({"revertResize": None}, 409)):
        resp = await _action(api, sid, body)
        assert resp.status_code == status, (body, resp.text)
    api.cloud.conf.set("fake", "memory_mb", 2048)
    await api.cloud.compute.report_resources(RequestContext.admin())
    resp = await _action(api, sid, {"resize": {"flavorRef": "5"}})
    assert resp.status_code == 400 and "No valid host was found" in resp.text
    assert await placement.allocations_of(api.cloud.services.db,
                                          placement.resize_consumer(sid)) == {}
