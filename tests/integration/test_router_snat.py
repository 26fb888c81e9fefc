"""Routers' SNAT with real packets, in scratch namespaces (the lab of test_linux_net.py:
a namespace plays the network host, the driver works in it; namespaces pose as guests
on its bridges through taps; one namespace is the outside, behind the public veth).

Two networks on the host: "routed", made through the network API (needs_router), and
"legacy", a nova-network one. The states are those network/state.py builds (its
functional test, test_network_api_routers.py, shows a router's gateway and interface
make snat_address): without a router the routed guest reaches nothing outside; with
its router's gateway and interface the outside sees it from the gateway address
(which the host answers on the public interface); the interface removed, it is cut
off again. The legacy guest is masqueraded to the host's address throughout."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from novalet.network.linux import LinuxNetDriver
from novalet.network.model import HostNetworkState, InstanceNet, NetworkOnHost, SecurityRule, Vif
from tests.integration.test_linux_net import (Wire, _require_tools, accepted_peer, arun,
                                              cleanup_namespaces, sh)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PUBLIC_HOST = "192.168.252.1"
OUTSIDE = "192.168.252.2"
GATEWAY_ADDRESS = "192.168.252.40"  # the router's gateway: an external network's address
EVERYTHING = [SecurityRule(None, None, None, cidr="0.0.0.0/0", direction=d)
              for d in ("ingress", "egress")]


@dataclass
class Net:
    name: str
    cidr: str
    gateway: str
    bridge: str
    guest_ip: str
    mac: str


ROUTED = Net("routed", "10.252.1.0/24", "10.252.1.1", "nvbr-rt1", "10.252.1.11",
             "52:54:00:fc:01:11")
LEGACY = Net("legacy", "10.252.2.0/24", "10.252.2.1", "nvbr-rt2", "10.252.2.11",
             "52:54:00:fc:02:11")


@dataclass
class RouterLab:
    host: str
    outside: str
    guests: dict[str, str]  # network name -> guest namespace
    driver: LinuxNetDriver
    vifs: dict[str, Vif]

    def state(self, snat_address: str | None) -> HostNetworkState:
        """The host's state; snat_address: the routed network's router gateway (set
        only while a router with SNAT has its gateway and an interface on it)."""
        networks = [
            NetworkOnHost(uuid=n.name, label=n.name, cidr=n.cidr, gateway=n.gateway,
                          bridge=n.bridge, dhcp_start=n.guest_ip, netmask="255.255.255.0",
                          dhcp=False, needs_router=n is ROUTED,
                          snat_address=snat_address if n is ROUTED else None)
            for n in (ROUTED, LEGACY)]
        instances = [InstanceNet(f"inst-{name}", "p", [vif], list(EVERYTHING))
                     for name, vif in self.vifs.items()]
        return HostNetworkState(host="lab", networks=networks, instances=instances,
                                metadata_port=18776, public_interface="nvpub2",
                                egress_filtered=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RouterLab]:
    _require_tools()
    tmp = tmp_path_factory.mktemp("routers")
    prefix = f"nvr{os.getpid() % 100000}"
    host, outside = f"{prefix}-host", f"{prefix}-out"
    guests = {n.name: f"{prefix}-{n.name}" for n in (ROUTED, LEGACY)}
    names = [host, outside, *guests.values()]
    driver = LinuxNetDriver(tmp / "state", netns=host)
    vifs = {n.name: Vif(id=str(uuid.uuid4()), address=n.mac, network_id=n.name,
                        network_label=n.name, bridge=n.bridge, fixed_ip=n.guest_ip,
                        cidr=n.cidr, gateway=n.gateway, dhcp=False)
            for n in (ROUTED, LEGACY)}
    lab = RouterLab(host, outside, guests, driver, vifs)
    wires = []
    try:
        for name in names:
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", host, "link", "add", "nvpub2", "type", "veth", "peer", "name", "eth0",
           "netns", outside)
        sh("ip", "-n", host, "addr", "add", f"{PUBLIC_HOST}/24", "dev", "nvpub2")
        sh("ip", "-n", host, "link", "set", "nvpub2", "up")
        sh("ip", "-n", outside, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        sh("ip", "-n", outside, "link", "set", "eth0", "up")
        for vif in vifs.values():
            await driver.plug(vif)
        await driver.apply(lab.state(None))
        for net in (ROUTED, LEGACY):
            ns = guests[net.name]
            wires.append(Wire(host, vifs[net.name].tap, ns, net.mac))
            sh("ip", "-n", ns, "addr", "add", f"{net.guest_ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "route", "add", "default", "via", net.gateway)
        yield lab
    finally:
        try:
            await driver.teardown()
        except Exception as exc:  # the namespaces go anyway
            print(f"teardown failed: {exc}")
        await driver.close()
        for wire in wires:
            wire.close()
        cleanup_namespaces(names)


def _seen_from(lab: RouterLab, network: str, port: int) -> str | None:
    """The source the outside sees a connection of the network's guest from; None
    when it does not get there (the outside has no route back to guest networks,
    so an answer also proves the source was translated)."""
    try:
        return accepted_peer(lab.outside, port, OUTSIDE, port, "0.0.0.0", lab.guests[network])
    except OSError:
        return None


async def test_snat_needs_a_router_gateway_and_interface(lab: RouterLab) -> None:
    # no router: the routed network's guest reaches nothing outside
    assert await arun(_seen_from, lab, "routed", 9101) is None
    assert await arun(_seen_from, lab, "legacy", 9102) == PUBLIC_HOST
    # the router's gateway and an interface on its subnet: SNATed to the gateway address,
    # which the host holds on its public interface (answers ARP for it)
    await lab.driver.apply(lab.state(GATEWAY_ADDRESS))
    addresses = sh("ip", "-n", lab.host, "-br", "addr", "show", "nvpub2").stdout
    assert f"{GATEWAY_ADDRESS}/32" in addresses
    assert await arun(_seen_from, lab, "routed", 9103) == GATEWAY_ADDRESS
    assert await arun(_seen_from, lab, "legacy", 9104) == PUBLIC_HOST
    # the interface removed (or the gateway cleared, or SNAT off): cut off again
    await lab.driver.apply(lab.state(None))
    assert await arun(_seen_from, lab, "routed", 9105) is None
    assert f"{GATEWAY_ADDRESS}/32" not in sh(
        "ip", "-n", lab.host, "-br", "addr", "show", "nvpub2").stdout
    assert await arun(_seen_from, lab, "legacy", 9106) == PUBLIC_HOST


async def test_the_routed_guest_still_reaches_its_gateway(lab: RouterLab) -> None:
    """Its host side (DHCP, metadata, the gateway address) is not 'outside'."""
    await lab.driver.apply(lab.state(None))
    ping = sh("ip", "netns", "exec", lab.guests["routed"], "ping", "-c1", "-W1", ROUTED.gateway,
              check=False)
    assert ping.returncode == 0, ping.stdout
