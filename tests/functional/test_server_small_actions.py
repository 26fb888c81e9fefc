"""os-resetState, changePassword, trigger_crash_dump and os-server-password through the
API with the fake driver: success, Nova's refusals, instance actions."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import httpx

from novalet.common.context import RequestContext
from novalet.compute.states import PowerState
from novalet.db import instances
from novalet.metadata.app import create_app
from novalet.metadata.cloud_lookup import CloudLookup
from novalet.service.allinone import AllInOne
from novalet.virt.fake import FakeDriver
from tests.functional.conftest import Api, _no_server_errors, boot, make_conf, wait_for

S = "/compute/v2.1/servers"


async def _action(api: Api, sid: str, body: Any, user: str = "demo",
                  version: str = "2.100") -> httpx.Response:
    return await api.request("POST", f"{S}/{sid}/action", json=body, user=user,
                             version=version)


async def _actions(api: Api, sid: str) -> list[str]:
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions", user="admin",
                             version="2.100")
    return [a["action"] for a in resp.json()["instanceActions"]]


def _driver(api: Api) -> FakeDriver:
    driver = api.cloud.compute.driver
    assert isinstance(driver, FakeDriver)
    return driver


# --- os-resetState ---------------------------------------------------------------

async def test_reset_state_sets_error_then_active_and_clears_the_task(api: Api,
                                                                      other: str) -> None:
    sid = (await boot(api))["id"]
    await instances.set_fields(api.cloud.services.db, sid, {"task_state": "rebooting"})
    resp = await _action(api, sid, {"os-resetState": {"state": "error"}}, user="admin")
    assert resp.status_code == 202 and resp.content == b""
    server = await wait_for(api, sid, "ERROR")
    assert server["OS-EXT-STS:vm_state"] == "error"
    resp = await _action(api, sid, {"os-resetState": {"state": "active"}}, user="admin")
    assert resp.status_code == 202
    await wait_for(api, sid, "ACTIVE")
    assert (await _actions(api, sid)).count("resetState") == 2
    # A member, even the owner, may not (admin only); another project can't see it.
    assert (await _action(api, sid, {"os-resetState": {"state": "error"}})
            ).status_code == 403
    assert (await _action(api, sid, {"os-resetState": {"state": "error"}}, user="other")
            ).status_code == 404
    for bad in ({"state": "invalid"}, {"state": 1}, {}, {"state": "error", "x": 1}):
        assert (await _action(api, sid, {"os-resetState": bad}, user="admin")
                ).status_code == 400, bad
    assert (await _action(api, "999", {"os-resetState": {"state": "error"}}, user="admin")
            ).status_code == 404


# --- changePassword --------------------------------------------------------------

async def test_change_password_reaches_the_guest(api: Api, other: str) -> None:
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"changePassword": {"adminPass": "n3w-pass"}})
    assert resp.status_code == 202, resp.text
    assert _driver(api).admin_passwords[sid] == "n3w-pass"
    server = await wait_for(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    assert "changePassword" in await _actions(api, sid)
    for bad in ({}, {"adminPass": 5}, {"adminPass": "x", "other": 1}):
        assert (await _action(api, sid, {"changePassword": bad})).status_code == 400
    assert (await _action(api, sid, {"changePassword": {"adminPass": "x"}}, user="other")
            ).status_code == 404


async def test_change_password_refused_while_stopped_and_locked(api: Api) -> None:
    sid = (await boot(api))["id"]
    assert (await _action(api, sid, {"lock": None}, user="admin")).status_code == 202
    resp = await _action(api, sid, {"changePassword": {"adminPass": "x"}})
    assert resp.status_code == 409 and "locked" in resp.text
    assert (await _action(api, sid, {"unlock": None}, user="admin")).status_code == 202
    assert (await _action(api, sid, {"os-stop": None})).status_code == 202
    await wait_for(api, sid, "SHUTOFF")
    resp = await _action(api, sid, {"changePassword": {"adminPass": "x"}})
    assert resp.status_code == 409 and "vm_state stopped" in resp.text


async def test_change_password_refused_up_front_without_a_password_agent(api: Api) -> None:
    """A host whose driver can't set passwords (the QEMU driver: no guest agent) is
    refused with 409 before any task_state or instance action."""
    sid = (await boot(api))["id"]
    driver = _driver(api)
    driver.capabilities = dataclasses.replace(  # type: ignore[misc]
        FakeDriver.capabilities, supports_set_admin_password=False)
    await api.cloud.compute.report_resources(RequestContext.admin())
    resp = await _action(api, sid, {"changePassword": {"adminPass": "x"}})
    assert resp.status_code == 409 and "Set admin password is not supported" in resp.text
    assert "changePassword" not in await _actions(api, sid)
    assert sid not in driver.admin_passwords


async def test_change_password_the_guest_refuses_is_a_409_with_the_task_cleared(
        api: Api) -> None:
    sid = (await boot(api))["id"]
    _driver(api).guests[sid] = PowerState.SHUTDOWN  # off behind the cloud's back
    resp = await _action(api, sid, {"changePassword": {"adminPass": "x"}})
    assert resp.status_code == 409 and "not running" in resp.text
    server = (await api.request("GET", f"{S}/{sid}", version="2.100")).json()["server"]
    assert server["OS-EXT-STS:task_state"] is None


# --- trigger_crash_dump ------------------------------------------------------------

async def test_trigger_crash_dump_from_2_17(api: Api, other: str) -> None:
    sid = (await boot(api))["id"]
    body = {"trigger_crash_dump": None}
    assert (await _action(api, sid, body, version="2.16")).status_code == 404
    resp = await _action(api, sid, body, version="2.17")
    assert resp.status_code == 202 and resp.content == b""
    await wait_for(api, sid, "ACTIVE")
    assert _driver(api).crash_dumps[sid] == 1
    listed = (await api.request("GET", f"{S}/{sid}/os-instance-actions", user="admin",
                                version="2.100")).json()["instanceActions"]
    request_id = next(a["request_id"] for a in listed if a["action"] == "trigger_crash_dump")
    for _ in range(100):
        action = (await api.request("GET", f"{S}/{sid}/os-instance-actions/{request_id}",
                                    user="admin", version="2.100")).json()["instanceAction"]
        if action["events"] and action["events"][0]["finish_time"]:
            break
        await asyncio.sleep(0.02)
    assert [(e["event"], e["result"]) for e in action["events"]] == [
        ("compute_trigger_crash_dump", "Success")]
    assert (await _action(api, sid, {"trigger_crash_dump": {}})).status_code == 400
    assert (await _action(api, sid, body, user="other")).status_code == 404
    assert (await _action(api, sid, {"os-stop": None})).status_code == 202
    await wait_for(api, sid, "SHUTOFF")
    resp = await _action(api, sid, body)
    assert resp.status_code == 409 and "vm_state stopped" in resp.text


async def test_trigger_crash_dump_refused_without_nmi(api: Api) -> None:
    sid = (await boot(api))["id"]
    _driver(api).capabilities = dataclasses.replace(  # type: ignore[misc]
        FakeDriver.capabilities, supports_trigger_crash_dump=False)
    await api.cloud.compute.report_resources(RequestContext.admin())
    resp = await _action(api, sid, {"trigger_crash_dump": None})
    assert resp.status_code == 400 and "crash dump is not supported" in resp.text
    assert "trigger_crash_dump" not in await _actions(api, sid)


# --- os-server-password ------------------------------------------------------------

async def test_server_password_is_what_the_guest_posted_until_cleared(api: Api,
                                                                      other: str) -> None:
    server = await boot(api, version="2.37", networks="auto")
    sid = server["id"]
    path = f"{S}/{sid}/os-server-password"
    assert (await api.request("GET", path)).json() == {"password": ""}
    address = next(iter(server["addresses"].values()))[0]["addr"]
    services = api.cloud.services
    app = create_app(CloudLookup(services.db, services.network))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 1)),
                                 base_url="http://169.254.169.254") as guest:
        assert (await guest.post("/openstack/latest/password", content=b"enc1")
                ).status_code == 200
        assert (await guest.post("/openstack/latest/password", content=b"enc2")
                ).status_code == 409  # once, as Nova
        assert (await api.request("GET", path)).json() == {"password": "enc1"}
        assert (await api.request("GET", path, user="other")).status_code == 404
        assert (await api.request("DELETE", path, user="other")).status_code == 404
        resp = await api.request("DELETE", path)
        assert resp.status_code == 204 and resp.content == b""
        assert (await api.request("GET", path)).json() == {"password": ""}
        assert (await guest.post("/openstack/latest/password", content=b"enc2")
                ).status_code == 200  # cleared: the guest may post again
    assert (await api.request("GET", path)).json() == {"password": "enc2"}
    assert (await api.request("GET", f"{S}/nope/os-server-password")).status_code == 404


# --- hosts of the previous release ---------------------------------------------------

async def test_an_upgrade_cap_below_1_3_refuses_instead_of_sending(state_dir: Path) -> None:
    """[upgrade_levels] compute = 1.2 (hosts not upgraded yet): the new host methods
    are refused with 409 and nothing is left half done."""
    cloud = AllInOne(make_conf(state_dir, upgrade_levels__compute="1.2"),
                     in_process_http=True)
    await cloud.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cloud.app),
                                     base_url="http://novalet.test",
                                     event_hooks={"response": [_no_server_errors]}) as c:
            api = Api(cloud, c)
            sid = (await boot(api))["id"]
            resp = await _action(api, sid, {"changePassword": {"adminPass": "x"}})
            assert resp.status_code == 409 and "needs compute RPC 1.3" in resp.text
            resp = await _action(api, sid, {"createBackup": {
                "name": "b", "backup_type": "daily", "rotation": 1}})
            assert resp.status_code == 409
            server = await wait_for(api, sid, "ACTIVE")
            assert server["OS-EXT-STS:task_state"] is None
            images = (await api.request("GET", "/image/v2/images", params={
                "instance_uuid": sid})).json()["images"]
            assert images == []
    finally:
        await cloud.stop()
