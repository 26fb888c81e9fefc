"""Issue 14, finding 2: the VIF seam. A compute host asks its own host's network
service to plug and unplug its guests' devices (topic network.<host>); the compute
process builds no host network driver, and the network service plugs only once it
holds the host's state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from novalet import config, exceptions
from novalet.network.manager import LocalVifs, NetworkManager
from novalet.network.model import HostNetworkState, Vif
from novalet.network.rpcapi import HostNetworkAPI, NetworkServiceUnavailable, host_topic
from novalet.rpc.bus import NotAuthorizedForHost
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
    async def host_state(self, host: str) -> HostNetworkState:
        return HostNetworkState(host=host)


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
    with pytest.raises(NotAuthorizedForHost, match="the network service of host host-2"):
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
