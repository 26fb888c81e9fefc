"""createBackup: snapshot images marked as backups, the oldest beyond the rotation
deleted once the new one is uploaded; the id in the body from 2.45, a Location before."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.functional.conftest import Api, boot, wait_for

S = "/compute/v2.1/servers"


async def _backup(api: Api, sid: str, name: str, rotation: Any, version: str = "2.100",
                  user: str = "demo", **extra: Any) -> httpx.Response:
    body = {"createBackup": {"name": name, "backup_type": "daily", "rotation": rotation,
                             **extra}}
    return await api.request("POST", f"{S}/{sid}/action", json=body, user=user,
                             version=version)


async def _backups(api: Api, sid: str) -> list[dict[str, Any]]:
    resp = await api.request("GET", "/image/v2/images", params={
        "image_type": "backup", "backup_type": "daily", "instance_uuid": sid,
        "sort_key": "created_at", "sort_dir": "asc"})
    return list(resp.json()["images"])


async def _settled(api: Api, sid: str, count: int) -> list[dict[str, Any]]:
    """The backups once the server is idle again and `count` of them are left."""
    await wait_for(api, sid, "ACTIVE")
    for _ in range(200):
        images = await _backups(api, sid)
        if len(images) == count and all(i["status"] == "active" for i in images):
            return images
        await asyncio.sleep(0.02)
    raise AssertionError(f"backups of {sid}: {images}")


async def test_backups_rotate_oldest_first(api: Api) -> None:
    sid = (await boot(api))["id"]
    first = await _backup(api, sid, "b1", 2, metadata={"k": "v"})
    assert first.status_code == 202, first.text
    image1 = first.json()["image_id"]
    images = await _settled(api, sid, 1)
    assert images[0]["id"] == image1 and images[0]["k"] == "v"
    assert images[0]["instance_uuid"] == sid and images[0]["image_type"] == "backup"
    resp = await _backup(api, sid, "b2", "2", version="2.44")  # a string rotation too
    assert resp.status_code == 202 and resp.content == b""
    image2 = resp.headers["Location"].rsplit("/", 1)[-1]
    assert [i["name"] for i in await _settled(api, sid, 2)] == ["b1", "b2"]
    resp = await _backup(api, sid, "b3", 2)
    image3 = resp.json()["image_id"]
    assert [i["id"] for i in await _settled(api, sid, 2)] == [image2, image3]
    assert (await api.request("GET", f"/image/v2/images/{image1}")).status_code == 404
    actions = await api.request("GET", f"{S}/{sid}/os-instance-actions")
    assert [a["action"] for a in actions.json()["instanceActions"]].count(
        "createBackup") == 3


async def test_rotation_zero_deletes_every_backup(api: Api) -> None:
    sid = (await boot(api))["id"]
    assert (await _backup(api, sid, "keep", 1)).status_code == 202
    await _settled(api, sid, 1)
    resp = await _backup(api, sid, "gone", 0, version="2.44")
    assert resp.status_code == 202 and "Location" not in resp.headers
    await _settled(api, sid, 0)


async def test_backup_refusals(api: Api, other: str) -> None:
    sid = (await boot(api))["id"]
    for bad in ({"name": "x", "backup_type": "daily"}, {"name": "x", "rotation": 1},
                {"backup_type": "daily", "rotation": 1},
                {"name": "x", "backup_type": "daily", "rotation": -1},
                {"name": "x", "backup_type": "daily", "rotation": "two"},
                {"name": "x", "backup_type": "daily", "rotation": 1, "other": 1}):
        resp = await api.request("POST", f"{S}/{sid}/action", json={"createBackup": bad})
        assert resp.status_code == 400, bad
    assert (await _backup(api, sid, "x", 1, user="other")).status_code == 404
    assert (await _backup(api, "nope", "x", 1)).status_code == 404
    # A lock does not stop a backup (nor a snapshot): it guards changes and deletes.
    assert (await api.request("POST", f"{S}/{sid}/action", json={"lock": None})
            ).status_code == 202
    assert (await _backup(api, sid, "locked", 1)).status_code == 202
    await wait_for(api, sid, "ACTIVE")
    assert (await api.request("POST", f"{S}/{sid}/action", json={"unlock": None})
            ).status_code == 202
    assert (await api.request("POST", f"{S}/{sid}/action", json={"os-stop": None})
            ).status_code == 202
    await wait_for(api, sid, "SHUTOFF")
    # SHUTOFF is fine (as Nova); a rescued server is not.
    assert (await _backup(api, sid, "off", 1)).status_code == 202
    await wait_for(api, sid, "SHUTOFF")
    assert (await api.request("POST", f"{S}/{sid}/action", json={"rescue": None})
            ).status_code == 200
    await wait_for(api, sid, "RESCUE")
    resp = await _backup(api, sid, "x", 1)
    assert resp.status_code == 409 and "vm_state rescued" in resp.text
