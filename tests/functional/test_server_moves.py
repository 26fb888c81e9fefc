"""Moves across fake compute hosts, run by the conductor's tasks: cold migration (with
and without a target host), resize to another host, confirm and revert across hosts,
the power state kept, allocations following the server, rollbacks with a fault, and
the refusals (403, 404, 409, 400 and no valid host) and the race of two moves."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from novalet.common.context import RequestContext
from novalet.db import placement
from novalet.service.allinone import AllInOne
from novalet.virt.fake import FakeDriver
from tests.functional.conftest import Api, boot, delete_server, wait_for

S = "/compute/v2.1/servers"
M = "/compute/v2.1/os-migrations"


def drivers(api: Api) -> dict[str, FakeDriver]:
    cloud = api.cloud
    found = {}
    for compute in (cloud.compute, *cloud.extra_computes):
        assert isinstance(compute.driver, FakeDriver)
        found[compute.host] = compute.driver
    return found


async def host_of(api: Api, sid: str) -> str:
    resp = await api.request("GET", f"{S}/{sid}", user="admin", version="2.100")
    return str(resp.json()["server"]["OS-EXT-SRV-ATTR:host"])


async def action(api: Api, sid: str, body: dict[str, Any], user: str = "admin",
                 version: str = "2.100") -> httpx.Response:
    return await api.request("POST", f"{S}/{sid}/action", user=user, version=version,
                             json=body)


async def migrations_of(api: Api, sid: str) -> list[dict[str, Any]]:
    resp = await api.request("GET", f"{M}?instance_uuid={sid}", user="admin",
                             version="2.80")
    assert resp.status_code == 200, resp.text
    return list(resp.json()["migrations"])


async def migration_becomes(api: Api, sid: str, status: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    for _ in range(300):
        found = await migrations_of(api, sid)
        if found and found[0]["status"] == status:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"migration of {sid} never became {status}: {found}")


async def hosts_holding(api: Api, consumer: str) -> set[str]:
    """The hosts whose providers hold allocations of `consumer`."""
    held = set()
    for provider in await placement.summaries(api.cloud.services.db):
        async with api.cloud.services.db.transaction() as s:
            from sqlalchemy import select

            from novalet.db.models import Allocation
            rows = (await s.execute(select(Allocation.provider_uuid).where(
                Allocation.consumer_id == consumer,
                Allocation.provider_uuid == provider.uuid))).all()
        if rows:
            held.add(provider.host)
    return held


async def events_of(api: Api, sid: str, action_name: str) -> list[tuple[str, str]]:
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions", user="admin",
                             version="2.100")
    for item in resp.json()["instanceActions"]:
        if item["action"] == action_name:
            detail = await api.request(
                "GET", f"{S}/{sid}/os-instance-actions/{item['request_id']}", user="admin",
                version="2.100")
            return [(e["event"], e["result"]) for e in detail.json()["instanceAction"]["events"]]
    raise AssertionError(f"no {action_name} action on {sid}")


async def test_migrate_moves_the_server_and_confirm_frees_the_source(
        multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    moved = await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    dest = moved["OS-EXT-SRV-ATTR:host"]
    assert dest != source
    record = await migration_becomes(api, sid, "finished")
    assert (record["migration_type"], record["source_compute"], record["dest_compute"]) == (
        "migration", source, dest)
    assert await hosts_holding(api, sid) == {source}  # the source's until confirmed
    assert await hosts_holding(api, placement.resize_consumer(sid)) == {dest}
    assert sid in drivers(api)[dest].guests and sid not in drivers(api)[source].guests
    # the owner confirms (a member's action, not an admin's)
    resp = await action(api, sid, {"confirmResize": None}, user="demo")
    assert resp.status_code == 204, resp.text
    await wait_for(api, sid, "ACTIVE")
    await migration_becomes(api, sid, "confirmed")
    assert await hosts_holding(api, sid) == {dest}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
    assert sid not in drivers(api)[source].migrated_out
    assert ("conductor_migrate_server", "Success") in await events_of(api, sid, "migrate")
    assert {e for e, _ in await events_of(api, sid, "migrate")} >= {
        "compute_prep_resize", "compute_resize_instance", "compute_finish_resize"}
    assert await events_of(api, sid, "confirmResize") == [
        ("compute_confirm_resize", "Success")]


async def test_migrate_to_a_host_then_revert_goes_back(multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    target = next(h for h in drivers(api) if h != source)
    resp = await action(api, sid, {"migrate": {"host": target}}, version="2.56")
    assert resp.status_code == 202, resp.text
    moved = await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    assert moved["OS-EXT-SRV-ATTR:host"] == target
    assert (await action(api, sid, {"revertResize": None}, user="demo")).status_code == 202
    back = await wait_for(api, sid, "ACTIVE", user="admin")
    assert back["OS-EXT-SRV-ATTR:host"] == source
    await migration_becomes(api, sid, "reverted")
    assert drivers(api)[source].guests[sid] == 1 and sid not in drivers(api)[target].guests
    assert await hosts_holding(api, sid) == {source}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
    assert [e for e, _ in await events_of(api, sid, "revertResize")] == [
        "compute_revert_resize", "compute_finish_revert_resize"]


async def test_migrate_ignores_a_host_before_2_56(multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    resp = await action(api, sid, {"migrate": {"host": "nowhere"}}, version="2.55")
    assert resp.status_code == 202, resp.text
    await wait_for(api, sid, "VERIFY_RESIZE", user="admin")


async def test_a_stopped_server_stays_off_through_migrate_and_resize(
        multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    assert (await action(api, sid, {"os-stop": None}, user="demo")).status_code == 202
    await wait_for(api, sid, "SHUTOFF")
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    moved = await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    assert moved["OS-EXT-STS:power_state"] == 4
    dest = moved["OS-EXT-SRV-ATTR:host"]
    assert drivers(api)[dest].guests[sid] == 4
    assert (await action(api, sid, {"confirmResize": None})).status_code == 204
    await wait_for(api, sid, "SHUTOFF")
    assert (await action(api, sid, {"resize": {"flavorRef": "2"}})).status_code == 202
    resized = await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    assert resized["OS-EXT-STS:power_state"] == 4
    assert (await action(api, sid, {"revertResize": None})).status_code == 202
    reverted = await wait_for(api, sid, "SHUTOFF", user="admin")
    assert reverted["flavor"]["original_name"] == "m1.tiny"


async def test_resize_goes_to_another_host_unless_allowed_to_stay(
        multi_host_api: Api) -> None:
    api = multi_host_api
    api.cloud.conf.set("DEFAULT", "allow_resize_to_same_host", False)
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, {"resize": {"flavorRef": "2"}}, user="demo")
            ).status_code == 202
    resized = await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    dest = resized["OS-EXT-SRV-ATTR:host"]
    assert dest != source and resized["flavor"]["original_name"] == "m1.small"
    assert drivers(api)[dest].specs[sid].memory_mb == 2048
    record = await migration_becomes(api, sid, "finished")
    assert record["migration_type"] == "resize"
    assert (await action(api, sid, {"confirmResize": None}, user="demo")).status_code == 204
    await wait_for(api, sid, "ACTIVE")
    assert await placement.allocations_of(api.cloud.services.db, sid) == {
        "VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}


async def test_a_failed_move_puts_the_server_back_with_a_fault(multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api, metadata={"fake_finish_migration_error": "disk lost"}))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    await migration_becomes(api, sid, "error")
    back = await wait_for(api, sid, "ACTIVE", user="admin")
    assert back["OS-EXT-SRV-ATTR:host"] == source
    assert drivers(api)[source].guests[sid] == 1
    assert ("compute_finish_resize", "Error") in await events_of(api, sid, "migrate")
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
    assert await hosts_holding(api, sid) == {source}
    faults = await api.cloud.services.compute.faults([await api.cloud.services.compute.get(
        RequestContext.admin(), sid)])
    assert faults == {}  # shown only for ERROR servers; the record is there:
    from novalet.db import instance_actions
    latest = await instance_actions.latest_faults(api.cloud.services.db, [sid])
    assert "disk lost" in latest[sid].message


async def test_migrate_refusals(multi_host_api: Api) -> None:
    api = multi_host_api
    mine = (await boot(api))["id"]
    admins = (await boot(api, name="admins", user="admin"))["id"]
    assert (await action(api, mine, {"migrate": None}, user="demo")).status_code == 403
    assert (await action(api, admins, {"migrate": None}, user="demo")).status_code == 404
    for body in ({"migrate": {"host": 1}}, {"migrate": {"flavor": "x"}},
                 {"migrate": {"host": ""}}):
        resp = await action(api, mine, body, version="2.56")
        assert resp.status_code == 400, (body, resp.text)
    resp = await action(api, mine, {"migrate": {"host": "nowhere"}}, version="2.56")
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == "Compute host nowhere could not be found."
    own = (await wait_for(api, mine, "ACTIVE", user="admin"))["OS-EXT-SRV-ATTR:host"]
    resp = await action(api, mine, {"migrate": {"host": own}}, version="2.56")
    assert resp.status_code == 400 and "where the server exists" in resp.text
    assert (await action(api, mine, {"pause": None}, user="demo")).status_code == 202
    await wait_for(api, mine, "PAUSED")
    resp = await action(api, mine, {"migrate": None})
    assert resp.status_code == 409
    assert "vm_state paused" in resp.json()["conflictingRequest"]["message"]
    assert await migrations_of(api, mine) == []


async def test_two_moves_of_one_server_at_once_one_wins(multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    answers = await asyncio.gather(
        action(api, sid, {"migrate": None}), action(api, sid, {"migrate": None}),
        action(api, sid, {"resize": {"flavorRef": "2"}}))
    assert sorted(r.status_code for r in answers) == [202, 409, 409]
    await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    assert len(await migrations_of(api, sid)) == 1


async def test_no_valid_host_is_a_400_and_leaves_the_server_as_it_was(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await action(api, sid, {"migrate": None})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"].startswith("No valid host was found.")
    server = await wait_for(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    assert (await migrations_of(api, sid))[0]["status"] == "error"
    assert ("conductor_migrate_server", "Error") in await events_of(api, sid, "migrate")
    # a resize on the only host stays there (allow_resize_to_same_host, the default)
    assert (await action(api, sid, {"resize": {"flavorRef": "2"}})).status_code == 202
    await wait_for(api, sid, "VERIFY_RESIZE")


async def _only_501_allowed(response: httpx.Response) -> None:
    if response.status_code >= 500 and response.status_code != 501:
        await response.aread()
        raise AssertionError(f"{response.request.url} answered {response.status_code}")


@pytest.fixture
async def api501(cloud: AllInOne) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test",
                                 event_hooks={"response": [_only_501_allowed]}) as c:
        yield Api(cloud, c)


async def test_a_hypervisor_without_moves_refuses_them_up_front(api501: Api) -> None:
    """A hypervisor that declares it can't move guests (both flags off): migrate and
    live migration are 501 before anything starts, and a resize stays on the
    server's own host."""
    api = api501
    api.cloud.conf.set("DEFAULT", "allow_resize_to_same_host", False)
    driver = api.cloud.compute.driver
    assert isinstance(driver, FakeDriver)
    driver.capabilities = dataclasses.replace(  # type: ignore[misc]
        FakeDriver.capabilities, supports_migrate=False, supports_live_migrate=False)
    await api.cloud.compute.report_resources(RequestContext.admin())
    sid = (await boot(api))["id"]
    for body in ({"migrate": None},
                 {"os-migrateLive": {"host": None, "block_migration": "auto"}}):
        resp = await action(api, sid, body)
        assert resp.status_code == 501, resp.text
    assert (await wait_for(api, sid, "ACTIVE"))["OS-EXT-STS:task_state"] is None
    assert (await action(api, sid, {"resize": {"flavorRef": "2"}})).status_code == 202
    await wait_for(api, sid, "VERIFY_RESIZE")


async def _unable(api: Api, *hosts: str) -> None:
    """These hosts' hypervisors report they can't take moves."""
    for compute in (api.cloud.compute, *api.cloud.extra_computes):
        if compute.host in hosts:
            driver = compute.driver
            assert isinstance(driver, FakeDriver)
            driver.capabilities = dataclasses.replace(  # type: ignore[misc]
                FakeDriver.capabilities, supports_migrate=False, supports_live_migrate=False)
            await compute.report_resources(RequestContext.admin())


async def test_moves_go_only_to_hosts_that_can_take_them(multi_host_api: Api) -> None:
    api = multi_host_api
    await _unable(api, "fake-host-2", "fake-host-4")
    for n in range(2):
        sid = (await boot(api, name=f"vm{n}", user="admin",
                          availability_zone="nova:fake-host-1"))["id"]
        assert (await action(api, sid, {"migrate": None})).status_code == 202
        moved = await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
        assert moved["OS-EXT-SRV-ATTR:host"] == "fake-host-3"
    live = (await boot(api, name="live", user="admin",
                       availability_zone="nova:fake-host-1"))["id"]
    resp = await action(api, live, {"os-migrateLive": {
        "host": "fake-host-2", "block_migration": "auto", "force": True}}, version="2.30")
    assert resp.status_code == 400  # forced, but that host can't take it (before 2.34)
    assert "Host fake-host-2 can't take live migrations." in resp.text
    await migration_becomes(api, live, "error")
    await _unable(api, "fake-host-3")
    resp = await action(api, live, {"migrate": None})
    assert resp.status_code == 400, resp.text
    assert "Every host was set aside for this move: fake-host-1, fake-host-2, " \
        "fake-host-3, fake-host-4." in resp.text


async def test_deleting_a_server_in_verify_resize_cleans_the_source(
        multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    dest = (await wait_for(api, sid, "VERIFY_RESIZE", user="admin"))["OS-EXT-SRV-ATTR:host"]
    assert sid in drivers(api)[source].migrated_out
    await delete_server(api, sid)
    assert sid not in drivers(api)[source].migrated_out
    assert sid not in drivers(api)[dest].guests
    assert (await migrations_of(api, sid))[0]["status"] == "confirmed"
    assert await hosts_holding(api, sid) == set()
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()


async def test_a_destination_refusing_at_prep_leaves_the_guest_untouched(
        multi_host_api: Api) -> None:
    """The destination says no before the source stops anything (here: its driver
    lost the feature since it last reported)."""
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    for host, driver in drivers(api).items():
        if host != source:
            driver.capabilities = dataclasses.replace(  # type: ignore[misc]
                FakeDriver.capabilities, supports_migrate=False)
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    await migration_becomes(api, sid, "error")
    back = await wait_for(api, sid, "ACTIVE", user="admin")
    assert back["OS-EXT-SRV-ATTR:host"] == source
    assert drivers(api)[source].guests[sid] == 1 and not drivers(api)[source].migrated_out
    events = await events_of(api, sid, "migrate")
    assert ("compute_prep_resize", "Error") in events
    assert "compute_resize_instance" not in [e for e, _ in events]
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
