"""Issue 14, finding 2: the VIF seam. A compute host asks its own host's network
service to plug and unplug its guests' devices (topic network.<host>); the compute
process builds no host network driver, and the network service plugs only once it
holds the host's state."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from novalet import config, exceptions
from novalet.network.manager import LocalVifs, NetworkManager
from typing import Any

from novalet.common.context import RequestContext
from novalet.network.model import HostNetworkState, InstanceNet, Vif
from novalet.network.rpcapi import (TOPIC, HostNetworkAPI, NetworkServiceUnavailable,
                                    host_topic)
from novalet.rpc import bus as rpc_bus
from novalet.rpc.bus import NoSuchMethod, NotAuthorizedForHost
from novalet.rpc.identity import UNIDENTIFIED, Senders
from novalet.rpc.inprocess import InProcessBus


def make_vif() -> Vif:
    return Vif(id="00000001-1111-2222-3333-444444444444", address="52:54:00:00:00:01",
               network_id="net-1", network_label="private", bridge="nvbr100",
               fixed_ip="10.0.0.11", cidr="10.0.0.0/24", gateway="10.0.0.1")


class RecordingDriver:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def claim_host(self) -> None:
        self.calls.append("claim")

    async def apply(self, state: HostNetworkState) -> None:
        self.calls.append(f"apply {state.host}")

    async def plug(self, vif: Vif, device: str = "tap") -> None:
        self.calls.append(f"plug {vif.tap}" + ("" if device == "tap" else f" ({device})"))

    async def unplug(self, vif: Vif, device: str = "tap") -> None:
        self.calls.append(f"unplug {vif.tap}" + ("" if device == "tap" else f" ({device})"))

    async def teardown(self) -> None:
        pass

    async def close(self) -> None:
        pass


class StateFromConductor:
    """The host's state: one instance, with make_vif()'s NIC."""

    async def host_state(self, host: str) -> HostNetworkState:
        return HostNetworkState(host=host, instances=[
            InstanceNet(instance_uuid="inst-1", project_id="p1", vifs=[make_vif()])])


def network_manager(bus: InProcessBus, host: str = "host-1") -> tuple[NetworkManager,
                                                                       RecordingDriver]:
    conf = config.Config()
    conf.set("DEFAULT", "host", host)
    driver = RecordingDriver()
    manager = NetworkManager(conf, bus, driver)
    manager.state_rpc = StateFromConductor()  # type: ignore[assignment]
    return manager, driver


async def test_a_compute_host_plugs_through_its_hosts_network_service_over_the_bus() -> None:
    bus = InProcessBus(default_timeout=5)
    mine, driver = network_manager(bus, "host-1")
    other, other_driver = network_manager(bus, "host-2")
    await bus.serve(host_topic("host-1"), mine)
    await bus.serve(host_topic("host-2"), other)
    vif = make_vif()
    await HostNetworkAPI(bus, "host-1").plug([vif])
    await HostNetworkAPI(bus, "host-1").unplug([vif])
    await HostNetworkAPI(bus, "host-1").plug([vif], device="driver")
    # the first plug waits for the host's state: never rendered from nothing
    assert driver.calls == ["apply host-1", f"plug {vif.tap}", f"unplug {vif.tap}",
                            f"plug {vif.tap} (driver)"]
    assert other_driver.calls == []
    await bus.close()


async def test_a_compute_host_cannot_have_another_hosts_network_service_plug() -> None:
    bus = InProcessBus(default_timeout=5)
    victim, driver = network_manager(bus, "host-2")
    await bus.serve(host_topic("host-2"), victim)
    intruder = HostNetworkAPI(bus.as_user("compute-host-1"), "host-2")
    with pytest.raises(NotAuthorizedForHost, match="may not call plug_vifs on network.host-2"):
        await intruder.plug([make_vif()])
    assert driver.calls == []
    await HostNetworkAPI(bus.as_user("compute-host-2"), "host-2").plug([make_vif()])
    await HostNetworkAPI(bus, "host-2").unplug([make_vif()])  # a service of the cloud
    assert driver.calls == ["apply host-2", f"plug {make_vif().tap}",
                            f"unplug {make_vif().tap}"]
    await bus.close()


async def test_a_host_without_a_network_service_is_named_in_the_error() -> None:
    bus = InProcessBus(default_timeout=1)
    with pytest.raises(NetworkServiceUnavailable, match="network service of host lonely"):
        await HostNetworkAPI(bus, "lonely").plug([make_vif()])
    await HostNetworkAPI(bus, "lonely").plug([])  # nothing to plug: no call at all


async def test_in_one_process_the_same_calls_reach_the_network_manager() -> None:
    manager, driver = network_manager(InProcessBus(default_timeout=5))
    await manager.apply_now()
    vif = make_vif()
    await LocalVifs(manager).plug([vif])
    await LocalVifs(manager).unplug([vif])
    await LocalVifs(manager).plug([])
    assert driver.calls == ["apply host-1", f"plug {vif.tap}", f"unplug {vif.tap}"]


async def test_a_plug_goes_on_when_the_apply_before_it_fails_in_part() -> None:
    manager, driver = network_manager(InProcessBus(default_timeout=5))

    async def partly(state: HostNetworkState) -> None:
        driver.calls.append("apply (partly failed)")
        raise exceptions.NovaletError("one uplink is missing")

    driver.apply = partly  # type: ignore[method-assign]
    vif = make_vif()
    await LocalVifs(manager).plug([vif])
    assert driver.calls == ["apply (partly failed)", f"plug {vif.tap}"]


async def test_a_device_kind_the_network_service_cannot_make_is_refused() -> None:
    manager, driver = network_manager(InProcessBus(default_timeout=5))
    with pytest.raises(exceptions.Invalid, match="plugs no 'veth' devices"):
        await LocalVifs(manager).plug([make_vif()], device="veth")
    assert driver.calls == []


def test_the_compute_process_builds_no_host_network_driver(tmp_path: Path) -> None:
    """A multi-host compute with real (non-fake) networking gets the bus client; the
    Linux driver module is never even imported in its process."""
    conf = tmp_path / "compute.conf"
    conf.write_text(f"[DEFAULT]\nhost = h1\nstate_path = {tmp_path}\ncompute_driver = fake\n"
                    "transport_url = memory://\n[network]\nhost_driver = linux\n")
    script = f"""
import asyncio, sys
from novalet import config
from novalet.network.rpcapi import HostNetworkAPI
from novalet.service.roles import Compute
role = Compute(config.load({str(conf)!r}))
asyncio.run(role.prepare())
assert isinstance(role.manager.vifs, HostNetworkAPI), role.manager.vifs
assert role.manager.vifs.host == "h1"
print(sorted(m for m in sys.modules if m.startswith("novalet.network.linux")))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


async def test_an_unidentified_sender_cannot_unplug_another_hosts_guests() -> None:
    """Finding: the network service let through any message without a user-id, and
    a host's RabbitMQ user may publish to amq.default, so it could unplug every
    guest of another host. The bus's one rule refuses those (unless trusted)."""
    victim, driver = network_manager(InProcessBus(default_timeout=5), "host-2")
    await victim.apply_now()
    message = rpc_bus.make_message(RequestContext.admin(), "unplug_vifs", "1.0",
                                   {"vifs": [make_vif().to_dict()]})
    reply = await rpc_bus.dispatch(victim, host_topic("host-2"), message, UNIDENTIFIED,
                                   Senders())
    assert reply["error"]["class"] == "NotAuthorizedForHost"
    assert driver.calls == ["apply host-2"]
    reply = await rpc_bus.dispatch(victim, host_topic("host-2"), message, UNIDENTIFIED,
                                   Senders(trust_unidentified=True))
    assert "error" not in reply
    assert driver.calls == ["apply host-2", f"unplug {make_vif().tap}"]


async def test_a_host_may_plug_only_nics_of_instances_on_it() -> None:
    """Its own host's compute user neither plugs a NIC the host's state lacks nor
    moves one of its NICs onto another bridge (the state is read again first)."""
    bus = InProcessBus(default_timeout=5)
    manager, driver = network_manager(bus, "host-1")
    await bus.serve(host_topic("host-1"), manager)
    await manager.apply_now()
    own = HostNetworkAPI(bus.as_user("compute-host-1"), "host-1")
    foreign = dataclasses.replace(make_vif(), id="99999999-1111-2222-3333-444444444444")
    elsewhere = dataclasses.replace(make_vif(), bridge="nvbr200", vlan=200)
    for vif in (foreign, elsewhere):
        for call in (own.plug, own.unplug):
            with pytest.raises(NotAuthorizedForHost, match="no instance on host host-1"):
                await call([vif])
    assert [c for c in driver.calls if not c.startswith("apply")] == []
    await own.plug([make_vif()])
    assert driver.calls[-1] == f"plug {make_vif().tap}"
    await bus.close()


async def test_plugs_are_not_served_on_the_shared_topic() -> None:
    """Finding: plug_vifs was served on the shared `network` topic too, before the
    service had applied its host's state."""
    bus = InProcessBus(default_timeout=5)
    manager, driver = network_manager(bus, "host-1")
    await bus.serve(TOPIC, manager)
    with pytest.raises(NoSuchMethod):
        await bus.call(RequestContext.admin(), TOPIC, "plug_vifs",
                       {"vifs": [make_vif().to_dict()]})
    assert driver.calls == []
    await bus.close()


async def test_the_network_heartbeat_reports_its_rpc_version() -> None:
    """Finding: the network service's heartbeat carried no rpc_version, so the
    conductor took every network service for a release before versions."""
    bus = InProcessBus(default_timeout=5)
    beats: list[dict[str, Any]] = []

    class Conductor:
        RPC_VERSION = "1.1"

        async def service_heartbeat(self, ctx: RequestContext, **args: Any) -> None:
            beats.append(args)

    await bus.serve("conductor", Conductor())
    manager, _ = network_manager(bus, "host-1")
    await manager._heartbeat()
    assert beats == [{"host": "host-1", "binary": "nova-network", "topic": "network",
                      "rpc_version": manager.RPC_VERSION}]
    await bus.close()
