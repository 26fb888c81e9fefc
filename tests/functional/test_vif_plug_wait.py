"""The plug wait (issue 17, part 3): a build starts the guest only once the host's
network service reports each port plugged (network-vif-plugged); a port never
reported fails the build with Nova's fault after [DEFAULT] vif_plugging_timeout,
unless vif_plugging_is_fatal is false; os-server-external-events reaches the same
wait; a delete ends it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from novalet.network.model import Vif
from novalet.network.rpcapi import PlugReport
from novalet.service.allinone import AllInOne
from tests.functional.conftest import Api, boot, delete_server, wait_for
from tests.functional.test_network_api_ports import P, _create, _network, _project

Report = Callable[[Any, list[Vif], PlugReport], Awaitable[None]]


def hold_reports(cloud: AllInOne, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The host's network service reports plugs only once the returned event is set."""
    release = asyncio.Event()
    original: Report = cloud.network._report_plugged

    async def held(ctx: Any, nics: list[Vif], report: PlugReport) -> None:
        await release.wait()
        await original(ctx, nics, report)

    monkeypatch.setattr(cloud.network, "_report_plugged", held)
    return release


def drop_reports(cloud: AllInOne, monkeypatch: pytest.MonkeyPatch) -> list[PlugReport]:
    """A network service that plugs but never reports (the reports it dropped)."""
    dropped: list[PlugReport] = []

    async def lost(ctx: Any, nics: list[Vif], report: PlugReport) -> None:
        dropped.append(report)

    monkeypatch.setattr(cloud.network, "_report_plugged", lost)
    return dropped


async def until_waiting(api: Api, uuid: str) -> None:
    """Until the build of `uuid` waits for its ports."""
    for _ in range(500):
        if api.cloud.compute.instance_events.waiting(uuid):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the build of {uuid} never waited for its ports")


async def _port(api: Api, cidr: str) -> dict[str, Any]:
    network, _ = await _network(api, f"net-{cidr}", cidr, await _project(api))
    return await _create(api, network_id=network)


async def test_a_boot_on_a_port_waits_for_it_to_be_reported_plugged(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    release = hold_reports(api.cloud, monkeypatch)
    port = await _port(api, "10.71.0.0/24")
    server = await boot(api, wait=None, networks=[{"port": port["id"]}])
    await until_waiting(api, server["id"])
    await asyncio.sleep(0.2)
    shown = (await api.request("GET", f"/compute/v2.1/servers/{server['id']}",
                                version="2.100")).json()["server"]
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("BUILD", "spawning")
    assert server["id"] not in await api.cloud.compute.driver.list_instances()  # not started
    assert api.cloud.compute.instance_events.waiting(server["id"]) == [
        ("network-vif-plugged", port["id"])]
    release.set()
    await wait_for(api, server["id"], "ACTIVE")
    assert server["id"] in await api.cloud.compute.driver.list_instances()
    assert api.cloud.compute.instance_events.waiting(server["id"]) == []


async def test_a_boot_on_a_network_waits_for_the_nic_it_made(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    release = hold_reports(api.cloud, monkeypatch)
    network, _ = await _network(api, "net-72", "10.72.0.0/24", await _project(api))
    server = await boot(api, wait=None, networks=[{"uuid": network}])
    await until_waiting(api, server["id"])
    (waited,) = api.cloud.compute.instance_events.waiting(server["id"])
    ports = (await api.request("GET", f"{P}?device_id={server['id']}")).json()["ports"]
    assert waited == ("network-vif-plugged", ports[0]["id"])
    release.set()
    await wait_for(api, server["id"], "ACTIVE")


async def test_a_port_never_reported_plugged_fails_the_build_with_a_fault(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    dropped = drop_reports(api.cloud, monkeypatch)
    api.cloud.conf.set("DEFAULT", "vif_plugging_timeout", 0.3)
    port = await _port(api, "10.73.0.0/24")
    server = await boot(api, wait="ERROR", networks=[{"port": port["id"]}])
    assert [r.instance_uuid for r in dropped] == [server["id"]]
    fault = server["fault"]
    assert fault["code"] == 500
    assert fault["message"].startswith("Virtual Interface creation failed")
    assert port["id"] in fault["message"] and "0.3 seconds" in fault["message"]
    assert server["id"] not in await api.cloud.compute.driver.list_instances()
    # the ERROR server deleted, the port the user made is free again
    await delete_server(api, server["id"])
    shown = (await api.request("GET", f"{P}/{port['id']}")).json()["port"]
    assert (shown["device_id"], shown["status"]) == ("", "DOWN")


async def test_vif_plugging_is_fatal_false_starts_the_guest_anyway(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    drop_reports(api.cloud, monkeypatch)
    api.cloud.conf.set("DEFAULT", "vif_plugging_timeout", 0.2)
    api.cloud.conf.set("DEFAULT", "vif_plugging_is_fatal", False)
    port = await _port(api, "10.74.0.0/24")
    await boot(api, networks=[{"port": port["id"]}])


async def test_a_timeout_of_zero_does_not_wait(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    dropped = drop_reports(api.cloud, monkeypatch)
    api.cloud.conf.set("DEFAULT", "vif_plugging_timeout", 0.0)
    port = await _port(api, "10.75.0.0/24")
    await boot(api, networks=[{"port": port["id"]}])
    assert dropped == []  # nothing asked to be reported


async def test_os_server_external_events_reaches_the_wait(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """What another network service (Neutron) would send: the admin API's event
    ends the wait as the host's own report does."""
    drop_reports(api.cloud, monkeypatch)
    port = await _port(api, "10.76.0.0/24")
    server = await boot(api, wait=None, networks=[{"port": port["id"]}])
    await until_waiting(api, server["id"])
    resp = await api.request("POST", "/compute/v2.1/os-server-external-events", user="admin",
                             json={"events": [{"name": "network-vif-plugged",
                                               "server_uuid": server["id"],
                                               "tag": port["id"]}]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["events"][0]["code"] == 200
    await wait_for(api, server["id"], "ACTIVE")


async def test_deleting_a_server_waiting_for_its_ports_ends_the_wait(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    drop_reports(api.cloud, monkeypatch)  # the default timeout: 300 seconds
    port = await _port(api, "10.77.0.0/24")
    server = await boot(api, wait=None, networks=[{"port": port["id"]}])
    await until_waiting(api, server["id"])
    await asyncio.wait_for(delete_server(api, server["id"]), 10)
    assert api.cloud.compute.instance_events.waiting(server["id"]) == []
    assert server["id"] not in await api.cloud.compute.driver.list_instances()
