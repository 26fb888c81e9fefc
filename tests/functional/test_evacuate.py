"""Evacuate through the API, over several fake hosts: only off a host that is down."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from novalet.compute.manager import ComputeManager
from novalet.db import migrations_records
from novalet.db.models import Allocation, ResourceProvider
from tests.functional.conftest import Api, add_other_project, boot, wait_for
from tests.functional.test_evacuate_network_refresh import record_refreshes

ACTION = "/compute/v2.1/servers/{}/action"


async def _evacuate(api: Api, uuid: str, body: dict[str, Any], user: str = "admin",
                    version: str = "2.100") -> Any:
    return await api.request("POST", ACTION.format(uuid), user=user, version=version,
                             json={"evacuate": body})


async def _force_down(api: Api, host: str, down: bool = True) -> None:
    resp = await api.request("PUT", "/compute/v2.1/os-services/force-down", user="admin",
                             version="2.11", json={"host": host, "binary": "nova-compute",
                                                   "forced_down": down})
    assert resp.status_code == 200, resp.text


def _compute(api: Api, host: str) -> ComputeManager:
    return next(c for c in [api.cloud.compute, *api.cloud.extra_computes] if c.host == host)


async def _booted(api: Api, name: str) -> dict[str, Any]:
    uuid = (await boot(api, name=name))["id"]
    return await wait_for(api, uuid, "ACTIVE", user="admin")


async def _evacuations(api: Api, uuid: str) -> list[Any]:
    return await migrations_records.list_migrations(
        api.cloud.conductor.db, migrations_records.MigrationQuery(instance_uuid=uuid))


async def _providers_used(api: Api, uuid: str) -> set[str]:
    """The hosts holding allocations of `uuid` (under any consumer named after it)."""
    async with api.cloud.conductor.db.transaction() as s:
        rows = await s.execute(select(ResourceProvider.host).join(
            Allocation, Allocation.provider_uuid == ResourceProvider.uuid).where(
            Allocation.consumer_id.like(f"{uuid}%")))
        return {r.host for r in rows}


async def test_evacuate_off_a_live_host_is_refused(multi_host_api: Api) -> None:
    api = multi_host_api
    server = await _booted(api, "alive")
    resp = await _evacuate(api, server["id"], {})
    assert resp.status_code == 400, resp.text
    host = server["OS-EXT-SRV-ATTR:host"]
    assert resp.json()["badRequest"]["message"] == f"Compute service of {host} is still in use."


async def test_evacuate_schedules_anew_and_the_source_cleans_up(multi_host_api: Api) -> None:
    api = multi_host_api
    server = await _booted(api, "evacuee")
    uuid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    assert uuid in await _compute(api, source).driver.list_instances()
    await _force_down(api, source)
    resp = await _evacuate(api, uuid, {})
    assert resp.status_code == 200, resp.text
    assert resp.content in (b"", b"null")
    moved = await wait_for(api, uuid, "SHUTOFF", user="admin")  # 2.95: ends stopped
    dest = moved["OS-EXT-SRV-ATTR:host"]
    assert dest not in (None, source)
    assert await _providers_used(api, uuid) == {dest}
    (migration,) = await _evacuations(api, uuid)
    assert (migration.migration_type, migration.status, migration.source_compute,
            migration.dest_compute) == ("evacuation", "done", source, dest)
    resp = await api.request("GET", f"/compute/v2.1/servers/{uuid}/os-instance-actions",
                             user="admin")
    assert resp.json()["instanceActions"][0]["action"] == "evacuate"
    # the failed host's compute service starts again: it destroys its stale copy
    await _force_down(api, source, False)
    old = _compute(api, source)
    assert uuid in await old.driver.list_instances()
    await old.stop()
    await old.start()  # the same FakeDriver object: its guests outlive the service
    assert uuid not in await old.driver.list_instances()
    assert uuid in await _compute(api, dest).driver.list_instances()
    (migration,) = await _evacuations(api, uuid)
    assert migration.status == "completed"


async def test_evacuate_to_a_named_host_keeps_the_state_below_295(multi_host_api: Api
                                                                 ) -> None:
    api = multi_host_api
    server = await _booted(api, "named")
    uuid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    target = next(h for h in ("fake-host-1", "fake-host-2") if h != source)
    await _force_down(api, source)
    resp = await _evacuate(api, uuid, {"host": target}, version="2.94")
    assert resp.status_code == 200, resp.text
    moved = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert moved["OS-EXT-SRV-ATTR:host"] == target


async def test_forced_evacuate_and_admin_pass_below_214(multi_host_api: Api) -> None:
    api = multi_host_api
    server = await _booted(api, "forced")
    uuid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    target = next(h for h in ("fake-host-3", "fake-host-4") if h != source)
    await _force_down(api, source)
    resp = await _evacuate(api, uuid, {"host": target, "onSharedStorage": False},
                           version="2.13")
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["adminPass"]) >= 8
    assert (await wait_for(api, uuid, "ACTIVE", user="admin"))["OS-EXT-SRV-ATTR:host"] == target


async def test_refusals(multi_host_api: Api) -> None:
    api = multi_host_api
    server = await _booted(api, "guarded")
    uuid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    await _force_down(api, source)
    assert (await _evacuate(api, uuid, {}, user="demo")).status_code == 403
    assert (await _evacuate(api, "0" * 8 + "-0000-0000-0000-" + "0" * 12, {})
            ).status_code == 404
    bad = [({}, "2.13"), ({"onSharedStorage": False}, "2.14"), ({"force": True}, "2.29"),
           ({"force": True}, "2.68"), ({"host": "x", "onSharedStorage": True,
                                        "adminPass": "p"}, "2.13"), ({"bogus": 1}, "2.95")]
    for body, version in bad:
        resp = await _evacuate(api, uuid, body, version=version)
        assert resp.status_code == 400, (body, version, resp.text)
    resp = await _evacuate(api, uuid, {"host": "nowhere"})
    assert resp.status_code == 404, resp.text
    assert resp.json()["itemNotFound"]["message"] == "Compute host nowhere not found."
    resp = await _evacuate(api, uuid, {"host": source})
    assert resp.status_code == 400, resp.text
    # the wrong state is a 409 (a paused server)
    await _force_down(api, source, False)
    resp = await api.request("POST", ACTION.format(uuid), json={"pause": None})
    assert resp.status_code == 202
    await wait_for(api, uuid, "PAUSED", user="admin")
    await _force_down(api, source)
    resp = await _evacuate(api, uuid, {})
    assert resp.status_code == 409, resp.text


async def test_other_project_gets_404(multi_host_api: Api) -> None:
    api = multi_host_api
    await add_other_project(api)
    server = await _booted(api, "theirs")
    resp = await _evacuate(api, server["id"], {}, user="other")
    assert resp.status_code == 404, resp.text


async def test_failed_spawn_puts_the_server_back(multi_host_api: Api) -> None:
    api = multi_host_api
    server = await _booted(api, "unlucky")
    uuid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    target = next(h for h in ("fake-host-1", "fake-host-2") if h != source)

    async def broken(spec: Any) -> None:
        raise RuntimeError("no room at the inn")
    _compute(api, target).driver.spawn = broken  # type: ignore[method-assign]
    await _force_down(api, source)
    refreshed = record_refreshes(api)
    assert (await _evacuate(api, uuid, {"host": target})).status_code == 200
    for _ in range(200):
        (migration,) = await _evacuations(api, uuid)
        if migration.status == "failed":
            break
        await asyncio.sleep(0.02)
    assert migration.status == "failed"
    back = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert back["OS-EXT-SRV-ATTR:host"] == source
    assert await _providers_used(api, uuid) == {source}
    # both hosts re-apply: the failed one serves its guest again, the destination
    # drops the floating NAT place_on gave it
    assert refreshed[-1] == {source, target}, refreshed


async def test_a_stopped_server_stays_stopped_below_295(multi_host_api: Api) -> None:
    api = multi_host_api
    server = await _booted(api, "sleeper")
    uuid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    resp = await api.request("POST", ACTION.format(uuid), json={"os-stop": None})
    assert resp.status_code == 202
    await wait_for(api, uuid, "SHUTOFF", user="admin")
    await _force_down(api, source)
    assert (await _evacuate(api, uuid, {}, version="2.94")).status_code == 200
    moved = await wait_for(api, uuid, "SHUTOFF", user="admin")
    assert moved["OS-EXT-SRV-ATTR:host"] != source
    dest = _compute(api, moved["OS-EXT-SRV-ATTR:host"])
    assert (await dest.driver.get_info(uuid)).power_state == 4
