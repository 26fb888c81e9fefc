"""Live migration on fake hosts (os-migrateLive), its progress in
/servers/{id}/migrations, force-complete (2.22) and abort (2.24, 2.65), and the
refusals on each side of the microversion boundaries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from novalet.db import placement
from tests.functional.conftest import Api, boot, wait_for
from tests.functional.test_server_moves import (action, drivers, events_of, host_of,
                                                hosts_holding, migration_becomes,
                                                migrations_of)

S = "/compute/v2.1/servers"
LIVE = {"os-migrateLive": {"host": None, "block_migration": "auto"}}


def slow(api: Api, steps: int = 400, delay: float = 0.02) -> None:
    """Live migrations that take steps * delay seconds unless forced or aborted."""
    api.cloud.conf.set("fake", "live_migration_steps", steps)
    api.cloud.conf.set("fake", "live_migration_step_delay", delay)


async def running_migration(api: Api, sid: str) -> dict[str, Any]:
    """The server's in-progress live migration once it reported some progress."""
    for _ in range(300):
        resp = await api.request("GET", f"{S}/{sid}/migrations", user="admin",
                                 version="2.80")
        assert resp.status_code == 200, resp.text
        found = resp.json()["migrations"]
        if found and found[0]["status"] == "running" and found[0]["memory_processed_bytes"]:
            return dict(found[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no running live migration of {sid}")


async def test_live_migration_moves_the_running_server(multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    moved = await wait_for(api, sid, "ACTIVE", user="admin")
    record = await migration_becomes(api, sid, "completed")
    assert moved["OS-EXT-SRV-ATTR:host"] == record["dest_compute"] != source
    assert record["migration_type"] == "live-migration"
    assert drivers(api)[record["dest_compute"]].guests[sid] == 1
    assert sid not in drivers(api)[source].guests
    assert await hosts_holding(api, sid) == {record["dest_compute"]}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
    events = await events_of(api, sid, "live-migration")
    assert [e for e, _ in events] == [
        "conductor_live_migrate_instance", "compute_check_can_live_migrate_destination",
        "compute_pre_live_migration",
        "compute_live_migration", "compute_post_live_migration_at_destination"]
    assert {r for _, r in events} == {"Success"}


async def test_progress_then_force_complete(multi_host_api: Api) -> None:
    api = multi_host_api
    slow(api)
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    target = next(h for h in drivers(api) if h != source)
    body = {"os-migrateLive": {"host": target, "block_migration": True, "force": True}}
    assert (await action(api, sid, body, version="2.30")).status_code == 202
    assert (await wait_for_status(api, sid, "MIGRATING"))
    running = await running_migration(api, sid)
    assert running["server_uuid"] == sid and running["dest_compute"] == target
    assert running["memory_total_bytes"] == 512 * 2**20
    assert 0 < running["memory_processed_bytes"] < running["memory_total_bytes"]
    assert running["memory_remaining_bytes"] == (running["memory_total_bytes"]
                                                 - running["memory_processed_bytes"])
    assert running["disk_total_bytes"] == 1 * 2**30  # block migration: the disk too
    shown = await api.request("GET", f"{S}/{sid}/migrations/{running['id']}", user="admin",
                              version="2.80")
    assert shown.status_code == 200 and shown.json()["migration"]["uuid"] == running["uuid"]
    listed = (await migrations_of(api, sid))[0]
    resp = await api.request("GET", f"/compute/v2.1/os-migrations?instance_uuid={sid}",
                             user="admin", version="2.23")
    assert [link["rel"] for link in resp.json()["migrations"][0]["links"]] == [
        "self", "bookmark"]
    assert listed["status"] == "running"
    resp = await api.request("POST", f"{S}/{sid}/migrations/{running['id']}/action",
                             user="admin", version="2.22", json={"force_complete": None})
    assert resp.status_code == 202, resp.text
    moved = await wait_for(api, sid, "ACTIVE", user="admin", timeout=5)
    assert moved["OS-EXT-SRV-ATTR:host"] == target
    await migration_becomes(api, sid, "completed")
    empty = await api.request("GET", f"{S}/{sid}/migrations", user="admin", version="2.23")
    assert empty.json() == {"migrations": []}


async def wait_for_status(api: Api, sid: str, status: str) -> bool:
    for _ in range(300):
        resp = await api.request("GET", f"{S}/{sid}", user="admin", version="2.100")
        if resp.json()["server"]["status"] == status:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_abort_keeps_the_server_on_its_host(multi_host_api: Api) -> None:
    api = multi_host_api
    slow(api)
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    running = await running_migration(api, sid)
    resp = await api.request("DELETE", f"{S}/{sid}/migrations/{running['id']}", user="admin",
                             version="2.24")
    assert resp.status_code == 202, resp.text
    back = await wait_for(api, sid, "ACTIVE", user="admin", timeout=5)
    assert back["OS-EXT-SRV-ATTR:host"] == source
    await migration_becomes(api, sid, "cancelled")
    assert drivers(api)[source].guests[sid] == 1
    assert sid not in drivers(api)[running["dest_compute"]].guests
    assert await hosts_holding(api, sid) == {source}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
    assert "fault" not in back


async def test_a_failed_live_migration_stays_home_with_a_fault(multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api, metadata={"fake_live_migration_error": "link down"}))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    await migration_becomes(api, sid, "error")
    back = await wait_for(api, sid, "ACTIVE", user="admin")
    assert back["OS-EXT-SRV-ATTR:host"] == source
    assert ("compute_live_migration", "Error") in await events_of(api, sid, "live-migration")
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()


async def test_a_paused_server_moves_paused(multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    assert (await action(api, sid, {"pause": None}, user="demo")).status_code == 202
    await wait_for(api, sid, "PAUSED")
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    moved = await wait_for(api, sid, "PAUSED", user="admin")
    record = await migration_becomes(api, sid, "completed")
    assert drivers(api)[record["dest_compute"]].guests[sid] == 3
    assert moved["OS-EXT-SRV-ATTR:host"] == record["dest_compute"]


@pytest.mark.parametrize(("version", "body"), [
    ("2.24", {"host": None, "block_migration": "auto"}),  # auto from 2.25
    ("2.24", {"host": None, "block_migration": False}),  # disk_over_commit needed
    ("2.25", {"host": None, "block_migration": False, "disk_over_commit": False}),
    ("2.25", {"block_migration": "auto"}),  # host is required (null allowed)
    ("2.29", {"host": None, "block_migration": "auto", "force": True}),  # 2.30 to 2.67
    ("2.68", {"host": None, "block_migration": "auto", "force": True}),
    ("2.25", {"host": None, "block_migration": "maybe"}),
])
async def test_live_migration_bad_bodies(multi_host_api: Api, version: str,
                                         body: dict[str, Any]) -> None:
    sid = (await boot(multi_host_api))["id"]
    resp = await action(multi_host_api, sid, {"os-migrateLive": body}, version=version)
    assert resp.status_code == 400, resp.text


async def test_live_migration_refusals(multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    admins = (await boot(api, name="admins", user="admin"))["id"]
    ok_old = {"os-migrateLive": {"host": None, "block_migration": False,
                                 "disk_over_commit": False}}
    assert (await action(api, sid, ok_old, user="demo", version="2.1")).status_code == 403
    assert (await action(api, admins, LIVE, user="demo", version="2.25")).status_code == 404
    own = await host_of(api, sid)
    resp = await action(api, sid, {"os-migrateLive": {"host": own, "block_migration": "auto"}},
                        version="2.25")
    assert resp.status_code == 400 and "to current host" in resp.text
    resp = await action(api, sid, {"os-migrateLive": {"host": "x", "block_migration": "auto"}},
                        version="2.25")
    assert resp.status_code == 400 and "Compute host x could not be found." in resp.text
    assert (await action(api, sid, {"os-stop": None}, user="demo")).status_code == 202
    await wait_for(api, sid, "SHUTOFF")
    resp = await action(api, sid, LIVE, version="2.25")
    assert resp.status_code == 409 and "vm_state stopped" in resp.text
    # force-complete and abort need a live migration under way (409), a known one
    for method, path, version, body in (
            ("POST", "/1/action", "2.22", {"force_complete": None}),
            ("DELETE", "/1", "2.24", None)):
        resp = await api.request(method, f"{S}/{sid}/migrations{path}", user="admin",
                                 version=version, json=body)
        assert resp.status_code == 409, resp.text
        resp = await api.request(method, f"{S}/{sid}/migrations{path}", user="admin",
                                 version=str(float(version) - 0.01)[:4], json=body)
        assert resp.status_code == 404, resp.text  # 2.21 / 2.23: no such route


async def test_force_complete_and_abort_refusals_during_a_migration(
        multi_host_api: Api) -> None:
    api = multi_host_api
    slow(api)
    sid = (await boot(api))["id"]
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    running = await running_migration(api, sid)
    mid = running["id"]
    fc = {"force_complete": None}
    resp = await api.request("POST", f"{S}/{sid}/migrations/{mid}/action", user="demo",
                             version="2.22", json=fc)
    assert resp.status_code == 403
    resp = await api.request("POST", f"{S}/{sid}/migrations/{mid}/action", user="admin",
                             version="2.22", json={"force_complete": {}})
    assert resp.status_code == 400
    resp = await api.request("POST", f"{S}/{sid}/migrations/{mid + 1000}/action",
                             user="admin", version="2.22", json=fc)
    assert resp.status_code == 400  # as Nova: an unknown migration is a bad request here
    resp = await api.request("DELETE", f"{S}/{sid}/migrations/{mid + 1000}", user="admin",
                             version="2.24")
    assert resp.status_code == 404  # ... and not found for abort
    resp = await api.request("DELETE", f"{S}/{sid}/migrations/{mid}", user="demo",
                             version="2.24")
    assert resp.status_code == 403
    resp = await api.request("GET", f"{S}/{sid}/migrations/{mid + 1000}", user="admin",
                             version="2.23")
    assert resp.status_code == 404
    # a second move while this one runs
    assert (await action(api, sid, {"migrate": None})).status_code == 409
    resp = await api.request("DELETE", f"{S}/{sid}/migrations/{mid}", user="admin",
                             version="2.24")
    assert resp.status_code == 202
    await wait_for(api, sid, "ACTIVE", user="admin", timeout=5)
    await migration_becomes(api, sid, "cancelled")


async def test_no_valid_host_is_400_before_2_34_and_recorded_after(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await action(api, sid, LIVE, version="2.33")
    assert resp.status_code == 400 and "No valid host was found." in resp.text
    await wait_for(api, sid, "ACTIVE")
    assert (await action(api, sid, LIVE, version="2.34")).status_code == 202
    found = await migration_becomes(api, sid, "error")
    assert found["migration_type"] == "live-migration"
    await wait_for(api, sid, "ACTIVE")
    assert len(await migrations_of(api, sid)) == 2


async def test_abort_while_preparing_from_2_65(multi_host_api: Api,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    api = multi_host_api
    for compute in (api.cloud.compute, *api.cloud.extra_computes):
        original = compute.pre_live_migration

        async def slow_prepare(ctx: Any, order: dict[str, Any], _orig: Any = original
                               ) -> None:
            await asyncio.sleep(0.5)
            await _orig(ctx, order)

        monkeypatch.setattr(compute, "pre_live_migration", slow_prepare)
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, LIVE, version="2.65")).status_code == 202
    preparing: dict[str, Any] = {}
    for _ in range(100):
        resp = await api.request("GET", f"{S}/{sid}/migrations", user="admin",
                                 version="2.65")
        found = resp.json()["migrations"]
        if found and found[0]["status"] == "preparing":
            preparing = found[0]
            break
        await asyncio.sleep(0.01)
    assert preparing, "never saw the migration preparing"
    path = f"{S}/{sid}/migrations/{preparing['id']}"
    resp = await api.request("DELETE", path, user="admin", version="2.64")
    assert resp.status_code == 400 and "Cannot abort live migration" in resp.text
    resp = await api.request("DELETE", path, user="admin", version="2.65")
    assert resp.status_code == 202, resp.text
    back = await wait_for(api, sid, "ACTIVE", user="admin", timeout=5)
    assert back["OS-EXT-SRV-ATTR:host"] == source
    await migration_becomes(api, sid, "cancelled")
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
