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

from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.compute.states import PowerState
from novalet.db import instances, placement
from novalet.rpc.bus import BusUnavailable
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



async def _wait_gone(api: Api, sid: str, why: str) -> None:
    """Until GET of server `sid` is a 404 (4 s at most; AssertionError(why) after)."""
    for _ in range(200):
        if (await api.request("GET", f"{S}/{sid}")).status_code == 404:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(why)


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
    await _wait_gone(api, sid, "not deleted")
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
    await _wait_gone(api, due, "not reclaimed")
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


# --- hosts of the previous release, and a bus that is down ----------------------------

def _cap_compute(api: Api, version: str | None) -> None:
    caps = api.cloud.services.compute.compute.caps.caps
    if version is None:
        caps.pop("compute", None)
    else:
        caps["compute"] = version


async def test_hosts_too_old_to_soft_delete_get_a_delete_now(soft_api: Api) -> None:
    """[upgrade_levels] compute below 1.3: DELETE deletes now (as with the interval
    off) rather than failing every delete for the whole upgrade window."""
    api = soft_api
    sid = (await boot(api))["id"]
    _cap_compute(api, "1.2")
    assert (await api.request("DELETE", f"{S}/{sid}")).status_code == 204
    await _wait_gone(api, sid, "not deleted")
    assert sid not in _driver(api).guests
    row = await instances.get(api.cloud.services.db, sid, deleted=True)
    assert row.vm_state == "deleted"


async def test_restore_with_hosts_too_old_is_a_409_that_changes_nothing(
        soft_api: Api) -> None:
    api = soft_api
    sid = (await boot(api))["id"]
    await _soft_delete(api, sid)
    deleted_at = (await instances.get(api.cloud.services.db, sid)).deleted_at
    _cap_compute(api, "1.2")
    resp = await _action(api, sid, {"restore": None})
    assert resp.status_code == 409 and "needs compute RPC 1.3" in resp.text
    row = await instances.get(api.cloud.services.db, sid)
    assert (row.vm_state, row.task_state, row.deleted_at) == ("soft-delete", None,
                                                              deleted_at)
    _cap_compute(api, None)
    assert (await _action(api, sid, {"restore": None})).status_code == 202
    await wait_for(api, sid, "ACTIVE")


async def test_a_send_failure_puts_the_soft_delete_and_restore_back(soft_api: Api) -> None:
    api = soft_api
    compute = api.cloud.services.compute
    sid = (await boot(api))["id"]
    real = compute.compute

    class DownBus:
        async def soft_delete_instance(self, *args: Any) -> None:
            raise BusUnavailable(url="amqp://x", reason="down")
        restore_instance = soft_delete_instance

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)
    compute.compute = DownBus()
    try:
        ctx = RequestContext.admin()
        with pytest.raises(BusUnavailable):
            await compute.soft_delete(ctx, await instances.get(compute.db, sid))
        row = await instances.get(compute.db, sid)
        assert (row.vm_state, row.task_state, row.deleted_at) == ("active", None, None)
        compute.compute = real
        await _soft_delete(api, sid)
        deleted_at = (await instances.get(compute.db, sid)).deleted_at
        compute.compute = DownBus()
        with pytest.raises(BusUnavailable):
            await compute.restore(ctx, sid)
        row = await instances.get(compute.db, sid)
        assert (row.vm_state, row.task_state, row.deleted_at) == ("soft-delete", None,
                                                                  deleted_at)
    finally:
        compute.compute = real
