"""createImage racing DELETE: no snapshot image is left queued forever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import update

from novalet.db.models import Instance
from tests.functional.conftest import Api, boot

S = "/compute/v2.1/servers"


async def _snapshots_of(api: Api, server_id: str) -> list[dict[str, Any]]:
    resp = await api.request("GET", "/image/v2/images?limit=1000", user="admin")
    return [i for i in resp.json()["images"] if i.get("instance_uuid") == server_id]


async def _gone(api: Api, server_id: str) -> None:
    for _ in range(300):
        if (await api.request("GET", f"{S}/{server_id}")).status_code == 404:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"server {server_id} was not deleted")


async def _settled(api: Api, server_id: str) -> list[dict[str, Any]]:
    """The server's snapshots once none is still on its way (queued or saving)."""
    for _ in range(300):
        images = await _snapshots_of(api, server_id)
        if all(i["status"] not in ("queued", "saving") for i in images):
            return images
        await asyncio.sleep(0.02)
    raise AssertionError(f"snapshots left unfinished: {images}")


async def test_create_image_refused_by_state_makes_no_image(api: Api) -> None:
    sid = (await boot(api, "deleting"))["id"]
    async with api.cloud.services.db.transaction() as s:
        await s.execute(update(Instance).where(Instance.uuid == sid).values(
            task_state="deleting"))
    resp = await api.request("POST", f"{S}/{sid}/action",
                             json={"createImage": {"name": "late"}})
    assert resp.status_code == 409, resp.text
    assert await _snapshots_of(api, sid) == []


async def test_delete_during_a_snapshot_discards_its_queued_image(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = api.cloud.compute.driver
    real_snapshot = driver.snapshot

    async def slow_snapshot(uuid: str, dest: str) -> str:
        await asyncio.sleep(0.3)  # the delete comes while the host copies the disk
        return await real_snapshot(uuid, dest)

    monkeypatch.setattr(driver, "snapshot", slow_snapshot)
    sid = (await boot(api, "snapping"))["id"]
    resp = await api.request("POST", f"{S}/{sid}/action",
                             json={"createImage": {"name": "doomed"}}, version="2.100")
    assert resp.status_code == 202, resp.text
    image_id = resp.json()["image_id"]
    assert (await api.request("DELETE", f"{S}/{sid}")).status_code == 204
    await _gone(api, sid)
    await asyncio.sleep(0.4)  # the host's snapshot has failed by now
    assert await _settled(api, sid) == []
    resp = await api.request("GET", f"/image/v2/images/{image_id}", user="admin")
    assert resp.status_code == 404


@pytest.mark.parametrize("delay", [0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.03])
async def test_create_image_racing_delete_leaves_no_queued_image(api: Api,
                                                                  delay: float) -> None:
    sid = (await boot(api, "racing"))["id"]

    async def delete_later() -> int:
        await asyncio.sleep(delay)
        return (await api.request("DELETE", f"{S}/{sid}")).status_code

    created, deleted = await asyncio.gather(
        api.request("POST", f"{S}/{sid}/action", json={"createImage": {"name": "race"}},
                    version="2.100"),
        delete_later())
    assert created.status_code in (202, 409), created.text
    assert deleted == 204
    await _gone(api, sid)
    for image in await _settled(api, sid):
        assert image["status"] == "active"
