"""The network service reports a build's NICs plugged (network RPC 1.2): a
network-vif-plugged event per NIC, cast to the compute service that asked, once
the NIC is plugged and the applied state (so the firewall) holds it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute.rpcapi import topic_for
from novalet.network.manager import LocalVifs
from novalet.network.model import HostNetworkState
from novalet.network.rpcapi import HostNetworkAPI, PlugReport, host_topic
from novalet.rpc import versions
from novalet.rpc.bus import NotAuthorizedForHost
from novalet.rpc.inprocess import InProcessBus
from tests.unit.network.test_vif_seam import make_vif, network_manager


class ComputeEvents:
    """A compute service's external_instance_event, recording what it is sent."""

    RPC_VERSION = "1.7"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def external_instance_event(self, ctx: RequestContext,
                                      events: list[dict[str, Any]]) -> None:
        self.events += events
        self.arrived.set()


async def served_compute(bus: InProcessBus, host: str) -> ComputeEvents:
    compute = ComputeEvents()
    await bus.serve(topic_for(host), compute)
    return compute


def tags(compute: ComputeEvents) -> list[tuple[str, str, str, str]]:
    return [(e["name"], e["server_uuid"], e["tag"], e["status"]) for e in compute.events]


async def test_a_plug_over_the_bus_is_reported_to_the_compute_host_that_asked() -> None:
    bus = InProcessBus(default_timeout=5)
    manager, driver = network_manager(bus, "host-1")
    await bus.serve(host_topic("host-1"), manager)
    compute = await served_compute(bus, "host-1")
    vif = make_vif()
    await HostNetworkAPI(bus.as_user("compute-host-1"), "host-1").plug(
        [vif], report=PlugReport("inst-1", "host-1"))
    await asyncio.wait_for(compute.arrived.wait(), 5)
    assert tags(compute) == [("network-vif-plugged", "inst-1", vif.id, "completed")]
    # the state holding the NIC was applied before the plug (and so the report)
    assert driver.calls == ["apply host-1", f"plug {vif.tap}"]
    await bus.close()


async def test_a_plug_without_a_report_reports_nothing() -> None:
    bus = InProcessBus(default_timeout=5)
    manager, _ = network_manager(bus, "host-1")
    await bus.serve(host_topic("host-1"), manager)
    compute = await served_compute(bus, "host-1")
    await HostNetworkAPI(bus, "host-1").plug([make_vif()])
    await LocalVifs(manager).plug([make_vif()])
    await asyncio.sleep(0.05)
    assert compute.events == []
    await bus.close()


async def test_in_one_process_the_state_is_read_before_the_report() -> None:
    """LocalVifs skips the bus's check that reads the state again: the report does
    it, so the port is reported once its firewall rules (not the quarantine) are in."""
    bus = InProcessBus(default_timeout=5)
    manager, driver = network_manager(bus, "host-1")
    compute = await served_compute(bus, "host-1")
    vif = make_vif()
    await LocalVifs(manager).plug([vif], report=PlugReport("inst-1", "host-1"))
    await asyncio.wait_for(compute.arrived.wait(), 5)
    assert driver.calls == ["apply host-1", f"plug {vif.tap}"]
    assert tags(compute) == [("network-vif-plugged", "inst-1", vif.id, "completed")]
    await bus.close()


async def test_a_nic_the_hosts_state_lacks_is_reported_failed() -> None:
    bus = InProcessBus(default_timeout=5)
    manager, driver = network_manager(bus, "host-1")

    class EmptyState:
        async def host_state(self, host: str) -> HostNetworkState:
            return HostNetworkState(host=host)

    manager.state_rpc = EmptyState()  # type: ignore[assignment]
    compute = await served_compute(bus, "host-1")
    vif = make_vif()
    await LocalVifs(manager).plug([vif], report=PlugReport("inst-1", "host-1"))
    await asyncio.wait_for(compute.arrived.wait(), 5)
    assert tags(compute) == [("network-vif-plugged", "inst-1", vif.id, "failed")]
    await bus.close()


async def test_a_host_cannot_have_its_plugs_reported_to_another_host() -> None:
    bus = InProcessBus(default_timeout=5)
    manager, driver = network_manager(bus, "host-1")
    await bus.serve(host_topic("host-1"), manager)
    other = await served_compute(bus, "host-2")
    with pytest.raises(NotAuthorizedForHost):
        await HostNetworkAPI(bus.as_user("compute-host-1"), "host-1").plug(
            [make_vif()], report=PlugReport("inst-1", "host-2"))
    await asyncio.sleep(0.05)
    assert other.events == [] and driver.calls == []
    await bus.close()


def test_a_network_service_capped_below_1_2_is_not_waited_for() -> None:
    conf = config.Config()
    conf.set("upgrade_levels", "network", "1.1")
    capped = HostNetworkAPI(InProcessBus(default_timeout=5), "host-1",
                            versions.Caps.from_conf(conf))
    assert not capped.reports_plugged
    assert HostNetworkAPI(InProcessBus(default_timeout=5), "host-1").reports_plugged


async def test_a_capped_plug_sends_no_report_arguments() -> None:
    """A 1.1 network service would refuse arguments it does not know."""
    bus = InProcessBus(default_timeout=5)
    seen: list[tuple[str, dict[str, Any]]] = []

    class OldService:
        RPC_VERSION = "1.1"

        async def plug_vifs(self, ctx: RequestContext, vifs: list[dict[str, Any]],
                            device: str = "tap") -> None:
            seen.append(("plug_vifs", {"vifs": vifs, "device": device}))

    await bus.serve(host_topic("host-1"), OldService())
    conf = config.Config()
    conf.set("upgrade_levels", "network", "1.1")
    await HostNetworkAPI(bus, "host-1", versions.Caps.from_conf(conf)).plug(
        [make_vif()], report=PlugReport("inst-1", "host-1"))
    assert len(seen) == 1
    await bus.close()
