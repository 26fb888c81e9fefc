"""Soft delete with `[DEFAULT] reclaim_instance_interval`: DELETE powers the server off
into SOFT_DELETED, restore brings it back, forceDelete and the periodic reclaim delete
it for good; quotas count it meanwhile (as Nova)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from novalet.common.timeutils import utcnow
from novalet.compute.states import PowerState
from novalet.db import instances, placement
from novalet.service.allinone import AllInOne
from novalet.virt.fake import FakeDriver
from tests.functional.conftest import Api, _no_server_errors, boot, make_conf, wait_for

S = "/compute/v2.1/servers"
INTERVAL = 3600.0  # the periodic never runs during a test: run_once() is called instead


@pytest.fixture
async def soft_api(state_dir: Path) -> AsyncIterator[Api]:
    cloud = AllInOne(make_conf(state_dir, reclaim_instance_interval=INTERVAL),
                     in_process_http=True)
    await cloud.start()
    try:
        transport = httpx.ASGITransport(app=cloud.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test",
                                     event_hooks={"response": [_no_server_errors]}) as c:
            yield Api(cloud, c)
    finally:
        await cloud.stop()


async def _action(api: Api, sid: str, body: Any, user: str = "demo") -> httpx.Response:
    return await api.request("POST", f"{S}/{sid}/action", json=body, user=user,
                             version="2.100")


def _driver(api: Api) -> FakeDriver:
    driver = api.cloud.compute.driver
    assert isinstance(driver, FakeDriver)
    return driver


async def _soft_delete(api: Api, sid: str) -> dict[str, Any]:
    resp = await api.request("DELETE", f"{S}/{sid}")
    assert resp.status_code == 204
    return await wait_for(api, sid, "SOFT_DELETED")


async def _quota_instances(api: Api) -> int:
    resp = await api.request("GET", "/compute/v2.1/limits")
    return int(resp.json()["limits"]["absolute"]["totalInstancesUsed"])


async def test_delete_soft_deletes_and_restore_brings_it_back(soft_api: Api,
                                                              other: str) -> None:
    api = soft_api
    sid = (await boot(api))["id"]
    server = await _soft_delete(api, sid)
    assert server["OS-EXT-STS:vm_state"] == "soft-delete"
    assert server["OS-EXT-STS:power_state"] == PowerState.SHUTDOWN
    assert _driver(api).guests[sid] == PowerState.SHUTDOWN  # off, not destroyed
    assert await _quota_instances(api) == 1  # still counted, as Nova
    assert await placement.allocations_of(api.cloud.services.db, sid)  # still held
    assert (await _action(api, sid, {"restore": None}, user="other")).status_code == 404
    resp = await _action(api, sid, {"restore": None})
    assert resp.status_code == 202 and resp.content == b""
    server = await wait_for(api, sid, "ACTIVE")
    assert _driver(api).guests[sid] == PowerState.RUNNING
    row = await instances.get(api.cloud.services.db, sid)
    assert row.deleted_at is None
    actions = await api.request("GET", f"{S}/{sid}/os-instance-actions")
    assert [a["action"] for a in actions.json()["instanceActions"]][:2] == ["restore",
                                                                             "delete"]
    # Not soft-deleted: restore is a 409.
    resp = await _action(api, sid, {"restore": None})
    assert resp.status_code == 409 and "vm_state active" in resp.text


async def test_force_delete_deletes_at_once(soft_api: Api, other: str) -> None:
    api = soft_api
    sid = (await boot(api))["id"]
    await _soft_delete(api, sid)
    assert (await _action(api, sid, {"forceDelete": None}, user="other")
            ).status_code == 404
    resp = await _action(api, sid, {"forceDelete": None})
    assert resp.status_code == 202
    for _ in range(200):
        if (await api.request("GET", f"{S}/{sid}")).status_code == 404:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("not deleted")
    assert sid not in _driver(api).guests
    assert await _quota_instances(api) == 0
    assert (await _action(api, sid, {"forceDelete": None})).status_code == 404


async def test_force_delete_of_a_locked_server_is_a_409(soft_api: Api) -> None:
    """As Nova, forceDelete works in any state (an ACTIVE server is deleted at once,
    skipping the soft delete), but not on a locked server."""
    api = soft_api
    sid = (await boot(api))["id"]
    assert (await _action(api, sid, {"lock": None}, user="admin")).status_code == 202
    resp = await _action(api, sid, {"forceDelete": None})
    assert resp.status_code == 409 and "locked" in resp.text
    assert (await _action(api, sid, {"unlock": None}, user="admin")).status_code == 202
    assert (await _action(api, sid, {"forceDelete": None})).status_code == 202


async def test_reclaim_deletes_what_waited_long_enough(soft_api: Api) -> None:
    api = soft_api
    db = api.cloud.services.db
    due, waiting = (await boot(api, "due"))["id"], (await boot(api, "waiting"))["id"]
    await _soft_delete(api, due)
    await _soft_delete(api, waiting)
    await instances.set_fields(db, due, {
        "deleted_at": utcnow() - dt.timedelta(seconds=INTERVAL + 1)})
    assert await api.cloud.conductor.reclaimer.run_once() == [due]
    for _ in range(200):
        if (await api.request("GET", f"{S}/{due}")).status_code == 404:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("not reclaimed")
    assert due not in _driver(api).guests
    assert await placement.allocations_of(db, due) == {}
    await wait_for(api, waiting, "SOFT_DELETED")  # its time has not come
    assert await _quota_instances(api) == 1


async def test_a_server_never_launched_is_deleted_at_once(soft_api: Api) -> None:
    api = soft_api
    sid = (await boot(api, wait="ERROR", metadata={"fake_spawn_error": "boom"}))["id"]
    assert (await api.request("DELETE", f"{S}/{sid}")).status_code == 204
    for _ in range(200):
        if (await api.request("GET", f"{S}/{sid}")).status_code == 404:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not deleted")


async def test_without_an_interval_delete_is_immediate_and_restore_a_409(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"restore": None})
    assert resp.status_code == 409 and "vm_state active" in resp.text
    assert (await api.request("DELETE", f"{S}/{sid}")).status_code == 204
    for _ in range(200):
        if (await api.request("GET", f"{S}/{sid}")).status_code == 404:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not deleted")
