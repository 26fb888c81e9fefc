"""The same-hypervisor rule of moves (scheduler/hypervisor_match.py) in a cloud of
mixed hosts: fake-host-1 and fake-host-2 run fake guests, fake-host-3 and
fake-host-4 say they run QEMU ones. A server never moves to a host of another
hypervisor type: asked for by name, the move is refused with a 400 saying why;
scheduled, the other type's hosts are no candidates."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.compute.manager import ComputeManager
from novalet.db import instance_actions
from novalet.virt.driver import HostResources
from tests.functional.conftest import Api, boot, wait_for

ACTION = "/compute/v2.1/servers/{}/action"
QEMU_HOSTS = ("fake-host-3", "fake-host-4")


def _compute(api: Api, host: str) -> ComputeManager:
    return next(c for c in [api.cloud.compute, *api.cloud.extra_computes] if c.host == host)


async def _runs_qemu(api: Api, host: str) -> None:
    """`host` reports a QEMU hypervisor from now on (a QEMU host beside fake ones)."""
    compute = _compute(api, host)
    fake = compute.driver.get_available_resource

    async def qemu() -> HostResources:
        return replace(await fake(), hypervisor_type="QEMU")
    compute.driver.get_available_resource = qemu  # type: ignore[method-assign]
    await compute.report_resources(RequestContext.admin())


@pytest.fixture
async def mixed(multi_host_api: Api) -> Api:
    for host in QEMU_HOSTS:
        await _runs_qemu(multi_host_api, host)
    return multi_host_api


async def _action(api: Api, uuid: str, body: dict[str, Any], version: str) -> Any:
    return await api.request("POST", ACTION.format(uuid), user="admin", version=version,
                             json=body)


async def _on_fake_host_1(api: Api, name: str) -> str:
    server = await boot(api, name=name, user="admin", availability_zone="nova:fake-host-1")
    assert server["OS-EXT-SRV-ATTR:host"] == "fake-host-1"
    return str(server["id"])


def _refusal(host: str, uuid: str) -> str:
    return (f"No valid host was found. Host {host} runs QEMU guests and server {uuid}'s "
            f"host fake-host-1 runs fake guests: a server moves only between hosts of "
            f"one hypervisor type.")


async def test_a_move_to_a_host_of_another_type_is_refused(mixed: Api) -> None:
    uuid = await _on_fake_host_1(mixed, "asked")
    for body, version in (({"migrate": {"host": "fake-host-3"}}, "2.56"),
                          ({"os-migrateLive": {"host": "fake-host-4",
                                               "block_migration": "auto"}}, "2.30"),
                          ({"os-migrateLive": {"host": "fake-host-4", "force": True,
                                               "block_migration": "auto"}}, "2.30")):
        resp = await _action(mixed, uuid, body, version)
        assert resp.status_code == 400, resp.text
        host = next(iter(body.values()))["host"]
        assert resp.json()["badRequest"]["message"] == _refusal(host, uuid)
    server = await wait_for(mixed, uuid, "ACTIVE", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == "fake-host-1"


async def test_scheduled_moves_pick_only_hosts_of_the_same_type(mixed: Api) -> None:
    uuid = await _on_fake_host_1(mixed, "scheduled")
    resp = await _action(mixed, uuid, {"migrate": None}, "2.56")
    assert resp.status_code == 202, resp.text
    server = await wait_for(mixed, uuid, "VERIFY_RESIZE", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == "fake-host-2"  # not the emptier QEMU hosts
    resp = await _action(mixed, uuid, {"confirmResize": None}, "2.56")
    assert resp.status_code == 204, resp.text
    await wait_for(mixed, uuid, "ACTIVE", user="admin")
    await _runs_qemu(mixed, "fake-host-1")  # now no other host runs fake guests
    resp = await _action(mixed, uuid, {"migrate": None}, "2.56")
    assert resp.status_code == 400, resp.text
    assert "No other host runs fake guests" in resp.json()["badRequest"]["message"]


async def test_unshelve_onto_a_host_of_another_type_is_refused(mixed: Api) -> None:
    uuid = await _on_fake_host_1(mixed, "shelved")
    assert (await _action(mixed, uuid, {"shelve": None}, "2.91")).status_code == 202
    await wait_for(mixed, uuid, "SHELVED_OFFLOADED", user="admin")
    resp = await _action(mixed, uuid, {"unshelve": {"host": "fake-host-3"}}, "2.91")
    assert resp.status_code == 202, resp.text  # refused by the conductor's task:
    await wait_for(mixed, uuid, "SHELVED_OFFLOADED", user="admin")  # it stays shelved
    fault = (await instance_actions.latest_faults(mixed.cloud.conductor.db, [uuid]))[uuid]
    assert fault.message == _refusal("fake-host-3", uuid)
    resp = await _action(mixed, uuid, {"unshelve": None}, "2.91")
    assert resp.status_code == 202, resp.text
    server = await wait_for(mixed, uuid, "ACTIVE", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] in ("fake-host-1", "fake-host-2")


async def test_an_evacuation_to_a_host_of_another_type_fails_and_stays_put(
        mixed: Api) -> None:
    uuid = await _on_fake_host_1(mixed, "evacuee")
    resp = await mixed.request("PUT", "/compute/v2.1/os-services/force-down", user="admin",
                               version="2.11", json={"host": "fake-host-1",
                                                     "binary": "nova-compute",
                                                     "forced_down": True})
    assert resp.status_code == 200, resp.text
    resp = await _action(mixed, uuid, {"evacuate": {"host": "fake-host-4"}}, "2.29")
    assert resp.status_code == 200, resp.text  # the conductor's task refuses it
    server = await wait_for(mixed, uuid, "ACTIVE", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == "fake-host-1"
    fault = (await instance_actions.latest_faults(mixed.cloud.conductor.db, [uuid]))[uuid]
    assert fault.message == _refusal("fake-host-4", uuid)
