"""Shelve, shelveOffload and unshelve through the API, over several fake hosts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from novalet.service.allinone import AllInOne
from tests.functional.conftest import (Api, _no_server_errors, boot, delete_server, make_conf,
                                      wait_for)

ACTION = "/compute/v2.1/servers/{}/action"


async def _act(api: Api, uuid: str, body: dict[str, Any], user: str = "demo",
               version: str = "2.100") -> Any:
    return await api.request("POST", ACTION.format(uuid), user=user, version=version,
                             json=body)


async def _allocations(api: Api, uuid: str) -> dict[str, int]:
    from novalet.db import placement
    return await placement.allocations_of(api.cloud.conductor.db, uuid)


async def _images_named(api: Api, name: str) -> list[dict[str, Any]]:
    resp = await api.request("GET", f"/image/v2/images?name={name}", user="admin")
    return list(resp.json()["images"])


async def _actions(api: Api, uuid: str) -> list[str]:
    resp = await api.request("GET", f"/compute/v2.1/servers/{uuid}/os-instance-actions",
                             user="admin")
    return [a["action"] for a in resp.json()["instanceActions"]]


async def test_shelve_offloads_at_once_and_unshelve_schedules_anew(multi_host_api: Api
                                                                  ) -> None:
    api = multi_host_api
    uuid = (await boot(api, name="shelf"))["id"]
    server = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert await _allocations(api, uuid)
    resp = await _act(api, uuid, {"shelve": None})
    assert resp.status_code == 202, resp.text
    shelved = await wait_for(api, uuid, "SHELVED_OFFLOADED", user="admin")
    assert shelved["OS-EXT-SRV-ATTR:host"] is None
    assert shelved["OS-EXT-STS:power_state"] == 4
    assert await _allocations(api, uuid) == {}
    images = await _images_named(api, "shelf-shelved")
    assert len(images) == 1 and images[0]["status"] == "active"
    host = server["OS-EXT-SRV-ATTR:host"]
    driver = next(c.driver for c in [api.cloud.compute, *api.cloud.extra_computes]
                  if c.host == host)
    assert uuid not in await driver.list_instances()

    resp = await _act(api, uuid, {"unshelve": None})
    assert resp.status_code == 202, resp.text
    active = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert active["OS-EXT-SRV-ATTR:host"] is not None
    assert await _allocations(api, uuid)
    assert await _images_named(api, "shelf-shelved") == []  # deleted once unshelved
    assert (await _actions(api, uuid))[:2] == ["unshelve", "shelve"]


@pytest.fixture
async def keep_cloud(state_dir: Path) -> Any:
    """A cloud that never offloads on its own (shelved_offload_time -1), with two hosts."""
    aio = AllInOne(make_conf(state_dir, fake__extra_hosts=1, shelved_offload_time=-1),
                   in_process_http=True)
    await aio.start()
    try:
        yield aio
    finally:
        await aio.stop()


@pytest.fixture
async def keep_api(keep_cloud: AllInOne) -> Any:
    import httpx
    transport = httpx.ASGITransport(app=keep_cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test",
                                 event_hooks={"response": [_no_server_errors]}) as c:
        yield Api(keep_cloud, c)


async def test_shelved_stays_and_unshelves_in_place(keep_api: Api) -> None:
    api = keep_api
    uuid = (await boot(api, name="kept"))["id"]
    server = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    shelved = await wait_for(api, uuid, "SHELVED", user="admin")
    assert shelved["OS-EXT-SRV-ATTR:host"] == server["OS-EXT-SRV-ATTR:host"]
    assert await _allocations(api, uuid)  # still holds its host
    # a zone or a host is only for offloaded servers
    resp = await _act(api, uuid, {"unshelve": {"availability_zone": "nova"}}, version="2.77")
    assert resp.status_code == 409, resp.text
    assert "must be SHELVED_OFFLOADED" in resp.json()["conflictingRequest"]["message"]
    assert (await _act(api, uuid, {"unshelve": None})).status_code == 202
    active = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert active["OS-EXT-SRV-ATTR:host"] == server["OS-EXT-SRV-ATTR:host"]
    assert await _images_named(api, "kept-shelved") == []


async def test_offload_is_admin_and_frees_the_host(keep_api: Api) -> None:
    api = keep_api
    uuid = (await boot(api, name="off"))["id"]
    resp = await _act(api, uuid, {"shelveOffload": None}, user="admin")
    assert resp.status_code == 409, resp.text  # ACTIVE
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    await wait_for(api, uuid, "SHELVED", user="admin")
    resp = await _act(api, uuid, {"shelveOffload": None})
    assert resp.status_code == 403, resp.text
    resp = await _act(api, uuid, {"shelveOffload": None}, user="admin")
    assert resp.status_code == 202, resp.text
    offloaded = await wait_for(api, uuid, "SHELVED_OFFLOADED", user="admin")
    assert offloaded["OS-EXT-SRV-ATTR:host"] is None
    assert await _allocations(api, uuid) == {}
    assert "shelveOffload" in await _actions(api, uuid)
    # quota is counted from the database (Nova's default): it still counts in full
    absolute = (await api.request("GET", "/compute/v2.1/limits")).json()["limits"]["absolute"]
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"]) == (1, 1)


async def test_unshelve_to_host_291(keep_api: Api) -> None:
    api = keep_api
    uuid = (await boot(api, name="pin"))["id"]
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    await wait_for(api, uuid, "SHELVED", user="admin")
    assert (await _act(api, uuid, {"shelveOffload": None}, user="admin")).status_code == 202
    await wait_for(api, uuid, "SHELVED_OFFLOADED", user="admin")
    # a host is admin-only; it must exist; the schema refuses what it does not know
    resp = await _act(api, uuid, {"unshelve": {"host": "fake-host-2"}}, version="2.91")
    assert resp.status_code == 403, resp.text
    resp = await _act(api, uuid, {"unshelve": {"host": "nowhere"}}, user="admin",
                      version="2.91")
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == "Compute host nowhere could not be found."
    resp = await _act(api, uuid, {"unshelve": {"host": "fake-host-2"}}, user="admin",
                      version="2.90")
    assert resp.status_code == 400, resp.text
    resp = await _act(api, uuid, {"unshelve": {"availability_zone": "atlantis"}},
                      version="2.77")
    assert resp.status_code == 400, resp.text
    resp = await _act(api, uuid, {"unshelve": {"host": "fake-host-2",
                                               "availability_zone": "elsewhere"}},
                      user="admin", version="2.91")
    assert resp.status_code == 400, resp.text  # no such zone
    resp = await _act(api, uuid, {"unshelve": {"host": "fake-host-2",
                                               "availability_zone": None}},
                      user="admin", version="2.91")
    assert resp.status_code == 202, resp.text
    active = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert active["OS-EXT-SRV-ATTR:host"] == "fake-host-2"
    assert active["pinned_availability_zone"] is None


async def test_unshelve_into_a_zone_277_pins_it(keep_api: Api) -> None:
    api = keep_api
    uuid = (await boot(api, name="zoned"))["id"]
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    await wait_for(api, uuid, "SHELVED")
    assert (await _act(api, uuid, {"shelveOffload": None}, user="admin")).status_code == 202
    await wait_for(api, uuid, "SHELVED_OFFLOADED")
    resp = await _act(api, uuid, {"unshelve": {"availability_zone": "nova"}}, version="2.77")
    assert resp.status_code == 202, resp.text
    active = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert (active["OS-EXT-AZ:availability_zone"], active["pinned_availability_zone"]) == (
        "nova", "nova")


async def test_unshelve_in_place_respawns_a_guest_the_host_lost(keep_api: Api) -> None:
    api = keep_api
    uuid = (await boot(api, name="lost"))["id"]
    host = (await wait_for(api, uuid, "ACTIVE", user="admin"))["OS-EXT-SRV-ATTR:host"]
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    await wait_for(api, uuid, "SHELVED")
    (image,) = await _images_named(api, "lost-shelved")
    driver = next(c.driver for c in [api.cloud.compute, *api.cloud.extra_computes]
                  if c.host == host)
    await driver.destroy(uuid)  # e.g. the host rebooted and lost it
    assert (await _act(api, uuid, {"unshelve": None})).status_code == 202
    await wait_for(api, uuid, "ACTIVE")
    assert driver.specs[uuid].image_ref == image["id"]  # type: ignore[attr-defined]


async def test_unshelve_in_place_needs_no_shelved_image(keep_api: Api) -> None:
    """The user deleted the shelved snapshot: the guest is still on its host, so
    unshelve powers it on all the same."""
    api = keep_api
    uuid = (await boot(api, name="nosnap"))["id"]
    host = (await wait_for(api, uuid, "ACTIVE", user="admin"))["OS-EXT-SRV-ATTR:host"]
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    await wait_for(api, uuid, "SHELVED")
    (image,) = await _images_named(api, "nosnap-shelved")
    resp = await api.request("DELETE", f"/image/v2/images/{image['id']}")
    assert resp.status_code == 204, resp.text
    assert (await _act(api, uuid, {"unshelve": None})).status_code == 202
    active = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert active["OS-EXT-SRV-ATTR:host"] == host and active["OS-EXT-STS:task_state"] is None


async def _other_project(api: Api) -> None:
    """Project "other" with member user "other" in `api`'s cloud (conftest's `other`
    fixture makes it in the default cloud's)."""
    identity = api.cloud.services.identity
    project = await identity.create_project({"name": "other"})
    user = await identity.create_user({"name": "other", "password": "other",
                                       "default_project_id": project.id})
    role = await identity.find_role("member")
    assert role is not None
    await identity.grant(user.id, project.id, role.id)


async def test_refusals(keep_api: Api) -> None:
    api = keep_api
    await _other_project(api)
    uuid = (await boot(api, name="ref"))["id"]
    resp = await _act(api, uuid, {"shelve": None}, user="other")
    assert resp.status_code == 404, resp.text
    resp = await _act(api, uuid, {"unshelve": None})
    assert resp.status_code == 409, resp.text  # not shelved
    resp = await _act(api, uuid, {"unshelve": {"availability_zone": "nova"}}, version="2.77")
    assert resp.status_code == 409, resp.text
    resp = await _act(api, uuid, {"unshelve": {"bogus": 1}}, version="2.91")
    assert resp.status_code == 400, resp.text
    resp = await _act(api, uuid, {"unshelve": {}}, version="2.77")
    assert resp.status_code == 400, resp.text
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    await wait_for(api, uuid, "SHELVED", user="admin")
    resp = await _act(api, uuid, {"shelve": None})
    assert resp.status_code == 409, resp.text


async def test_failed_shelve_puts_the_server_back(keep_api: Api) -> None:
    api = keep_api
    uuid = (await boot(api, name="frail"))["id"]
    server = await wait_for(api, uuid, "ACTIVE", user="admin")
    host = server["OS-EXT-SRV-ATTR:host"]
    compute = next(c for c in [api.cloud.compute, *api.cloud.extra_computes]
                   if c.host == host)

    async def broken(uuid: str, dest: str) -> str:
        raise RuntimeError("disk on fire")
    compute.driver.snapshot = broken  # type: ignore[method-assign]
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    for _ in range(200):
        resp = await api.request("GET", f"/compute/v2.1/servers/{uuid}/os-instance-actions",
                                 user="admin")
        detail = await api.request(
            "GET", f"/compute/v2.1/servers/{uuid}/os-instance-actions/"
            f"{resp.json()['instanceActions'][0]['request_id']}", user="admin")
        events = detail.json()["instanceAction"].get("events", [])
        if any(e["result"] == "Error" for e in events):
            break
        await asyncio.sleep(0.02)
    server = await wait_for(api, uuid, "SHUTOFF", user="admin")  # powered off before the snapshot failed
    assert server["OS-EXT-SRV-ATTR:host"] == host
    assert await _images_named(api, "frail-shelved") == []


async def test_periodic_offload(state_dir: Path) -> None:
    import httpx
    aio = AllInOne(make_conf(state_dir, shelved_offload_time=1, shelved_poll_interval=0.2),
                   in_process_http=True)
    await aio.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=aio.app),
                                     base_url="http://novalet.test",
                                     event_hooks={"response": [_no_server_errors]}) as c:
            api = Api(aio, c)
            uuid = (await boot(api, name="later"))["id"]
            assert (await _act(api, uuid, {"shelve": None})).status_code == 202
            await wait_for(api, uuid, "SHELVED", user="admin")
            server = await wait_for(api, uuid, "SHELVED_OFFLOADED", user="admin", timeout=10)
            assert server["OS-EXT-SRV-ATTR:host"] is None
            assert "shelveOffload" in await _actions(api, uuid)
    finally:
        await aio.stop()


async def test_deleting_a_shelved_server_deletes_its_image_and_nics(api: Api) -> None:
    uuid = (await boot(api, name="gone", networks="auto"))["id"]
    network = api.cloud.services.network
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    await wait_for(api, uuid, "SHELVED_OFFLOADED", user="admin")
    assert len(await _images_named(api, "gone-shelved")) == 1
    assert len(await network.vifs_for_instance(uuid)) == 1  # an offloaded server keeps it
    await delete_server(api, uuid)
    assert await _images_named(api, "gone-shelved") == []
    assert await network.vifs_for_instance(uuid) == []



async def test_shelve_on_a_down_host_fails_fast_and_puts_back(keep_api: Api) -> None:
    api = keep_api
    uuid = (await boot(api, name="stranded"))["id"]
    host = (await wait_for(api, uuid, "ACTIVE", user="admin"))["OS-EXT-SRV-ATTR:host"]
    resp = await api.request("PUT", "/compute/v2.1/os-services/force-down", user="admin",
                             version="2.11", json={"host": host, "binary": "nova-compute",
                                                   "forced_down": True})
    assert resp.status_code == 200, resp.text
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    for _ in range(200):
        if await _images_named(api, "stranded-shelved") == []:
            break
        await asyncio.sleep(0.02)
    server = await wait_for(api, uuid, "ACTIVE", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == host
    resp = await api.request("GET", f"/compute/v2.1/servers/{uuid}/os-instance-actions",
                             user="admin")
    request_id = resp.json()["instanceActions"][0]["request_id"]
    detail = await api.request("GET", f"/compute/v2.1/servers/{uuid}/os-instance-actions/"
                               f"{request_id}", user="admin", version="2.51")
    action = detail.json()["instanceAction"]
    assert action["action"] == "shelve"
    assert [(e["event"], e["result"]) for e in action["events"]] == [
        ("compute_shelve_instance", "Error")]


async def test_failed_unshelve_leaves_it_offloaded(keep_api: Api) -> None:
    api = keep_api
    uuid = (await boot(api, name="stuck"))["id"]
    assert (await _act(api, uuid, {"shelve": None})).status_code == 202
    await wait_for(api, uuid, "SHELVED")
    assert (await _act(api, uuid, {"shelveOffload": None}, user="admin")).status_code == 202
    await wait_for(api, uuid, "SHELVED_OFFLOADED")

    async def broken(spec: Any) -> None:
        raise RuntimeError("out of disk")
    for compute in [api.cloud.compute, *api.cloud.extra_computes]:
        compute.driver.spawn = broken  # type: ignore[method-assign]
    assert (await _act(api, uuid, {"unshelve": None})).status_code == 202
    # the API set task_state unshelving before it answered: this waits for the task
    server = await wait_for(api, uuid, "SHELVED_OFFLOADED", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] is None
    assert await _allocations(api, uuid) == {}
    assert len(await _images_named(api, "stuck-shelved")) == 1  # still there to unshelve
    # and the scheduler refusing (the only host asked for is down) does the same
    resp = await api.request("PUT", "/compute/v2.1/os-services/force-down", user="admin",
                             version="2.11", json={"host": "fake-host-2",
                                                   "binary": "nova-compute",
                                                   "forced_down": True})
    assert resp.status_code == 200, resp.text
    resp = await _act(api, uuid, {"unshelve": {"host": "fake-host-2"}}, user="admin",
                      version="2.91")
    assert resp.status_code == 202, resp.text
    server = await wait_for(api, uuid, "SHELVED_OFFLOADED", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] is None
    assert await _allocations(api, uuid) == {}
