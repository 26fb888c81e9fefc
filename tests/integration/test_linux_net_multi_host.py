"""multi_host networking against the real kernel: two hosts share one network over an
uplink, each with its own bridge address, dnsmasq and metadata DNAT, as
nova-network's multi_host did.

Two namespaces play compute hosts, joined by a veth that is each host's uplink
(the network's interface, enslaved to its bridge); each host has one guest. The
DHCP broadcasts of a guest reach both hosts' dnsmasq: only its own host may answer.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Interface
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from novalet.network.linux import LinuxNetDriver
from novalet.network.linux.netlink import bridge_mac
from novalet.network.model import HostNetworkState, InstanceNet, NetworkOnHost, SecurityRule, Vif
from tests.integration.test_linux_net import (UDHCPC_SCRIPT, Wire, _require_tools, accepted_peer,
                                              alive, arun, cleanup_namespaces, ping, sh)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CIDR = "10.249.0.0/24"
BRIDGE = "nvbr-mh"
UPLINK = "nvup"
METADATA_PORT = 18776
SIDES = ("a", "b")
HOST_ADDRESS = {"a": "10.249.0.3", "b": "10.249.0.4"}   # 10.249.0.1 is nobody's
GUEST_ADDRESS = {"a": "10.249.0.11", "b": "10.249.0.12"}


@dataclass
class Side:
    host_ns: str
    guest_ns: str
    vif: Vif
    driver: LinuxNetDriver
    wire: Wire | None = None
    lease: str = ""


def make_vif(side: str) -> Vif:
    return Vif(id=f"vif-{side}", address=f"52:54:00:fb:01:{SIDES.index(side) + 1:02x}",
               network_id="net-mh", network_label="multi", bridge=BRIDGE,
               fixed_ip=GUEST_ADDRESS[side], cidr=CIDR, gateway=HOST_ADDRESS[side])


def state_of(side: str, sides: dict[str, Side]) -> HostNetworkState:
    """What host `side` is told: the network from its own address, its own guest only;
    the guests share a security group, so each admits the other."""
    own = sides[side].vif
    other = GUEST_ADDRESS["b" if side == "a" else "a"]
    network = NetworkOnHost(
        uuid="net-mh", label="multi", cidr=CIDR, gateway=HOST_ADDRESS[side], bridge=BRIDGE,
        dhcp_start="10.249.0.2", netmask="255.255.255.0", interface=UPLINK, multi_host=True,
        hosts={own.address: (own.fixed_ip, f"vm-{side}")})
    instance = InstanceNet(f"inst-{side}", "p", [own],
                           [SecurityRule(None, None, None, remote_ips=[other])])
    return HostNetworkState(host=f"host-{side}", networks=[network], instances=[instance],
                            metadata_host="127.0.0.1", metadata_port=METADATA_PORT)


def reaches(ns: str, address: str) -> bool:
    """A ping answered within 3 s. The first ARP exchange across the uplink here
    takes about a second, more than `ping`'s one-second wait."""
    return sh("ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.5", "-w", "3", address,
              check=False).returncode == 0


def lease(side: Side, tmp: Path) -> str:
    script = tmp / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    out = tmp / f"{side.guest_ns}.lease"
    done = subprocess.run(
        ["ip", "netns", "exec", side.guest_ns, "env", f"LEASE_FILE={out}", "busybox", "udhcpc",
         "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1", "-s", str(script)],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"udhcpc in {side.guest_ns} got no lease:\n{done.stdout}"
    return out.read_text().strip()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sides(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Side]]:
    _require_tools()
    tmp = tmp_path_factory.mktemp("multihost")
    prefix = f"nvm{os.getpid() % 100000}"
    sides = {s: Side(f"{prefix}-h{s}", f"{prefix}-g{s}", make_vif(s),
                     LinuxNetDriver(tmp / f"state-{s}", netns=f"{prefix}-h{s}")) for s in SIDES}
    names = [n for side in sides.values() for n in (side.host_ns, side.guest_ns)]
    try:
        for name in names:
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", sides["a"].host_ns, "link", "add", UPLINK, "type", "veth", "peer",
           "name", UPLINK, "netns", sides["b"].host_ns)
        for name, side in sides.items():
            await side.driver.plug(side.vif)
            await side.driver.apply(state_of(name, sides))
            side.wire = Wire(side.host_ns, side.vif.tap, side.guest_ns, side.vif.address)
        for side in sides.values():
            side.lease = await arun(lease, side, tmp)
        yield sides
    finally:
        for side in sides.values():
            try:
                await side.driver.teardown()
            except Exception as exc:  # the namespaces go anyway
                print(f"teardown failed: {exc}")
            await side.driver.close()
            if side.wire:
                side.wire.close()
        cleanup_namespaces(names)


async def test_each_guest_is_served_by_its_own_host(sides: dict[str, Side]) -> None:
    for name, side in sides.items():
        address, netmask, router, hostname = side.lease.split()
        assert (address, router, hostname) == (GUEST_ADDRESS[name], HOST_ADDRESS[name],
                                               f"vm-{name}"), side.lease
        bridge = sh("ip", "-n", side.host_ns, "-br", "addr", "show", BRIDGE).stdout
        assert f"{HOST_ADDRESS[name]}/24" in bridge and "10.249.0.1/" not in bridge
        assert bridge_mac(BRIDGE, IPv4Interface(f"{HOST_ADDRESS[name]}/24")) in sh(
            "ip", "-n", side.host_ns, "-br", "link", "show", BRIDGE).stdout
        assert sh("ip", "-n", side.host_ns, "-o", "link", "show", "master", BRIDGE
                  ).stdout.count(UPLINK) == 1


async def test_guests_on_two_hosts_reach_each_other_over_the_uplink(
        sides: dict[str, Side]) -> None:
    a, b = sides["a"], sides["b"]
    assert reaches(a.guest_ns, GUEST_ADDRESS["b"]) and reaches(b.guest_ns, GUEST_ADDRESS["a"])
    # the hosts reach each other too: their bridges' MACs differ
    assert reaches(a.host_ns, HOST_ADDRESS["b"])
    peer = await arun(accepted_peer, b.guest_ns, 7100, GUEST_ADDRESS["b"], 7100, "0.0.0.0",
                      a.guest_ns)
    assert peer == GUEST_ADDRESS["a"]
    # the other host is not in the group: host b can't reach guest a
    assert not ping(b.host_ns, GUEST_ADDRESS["a"])


async def test_metadata_of_each_guest_goes_to_its_own_host(sides: dict[str, Side]) -> None:
    for name, side in sides.items():
        peer = await arun(accepted_peer, side.host_ns, METADATA_PORT, "169.254.169.254", 80,
                          "127.0.0.1", side.guest_ns)
        assert peer == GUEST_ADDRESS[name]


async def test_each_host_tears_down_only_its_own(sides: dict[str, Side]) -> None:
    a, b = sides["a"], sides["b"]
    pid = a.driver.dnsmasq.pid(BRIDGE)
    await a.driver.teardown()
    assert pid is not None and not alive(pid)
    assert BRIDGE not in sh("ip", "-n", a.host_ns, "link").stdout
    assert UPLINK in sh("ip", "-n", a.host_ns, "link").stdout   # not ours: left in place
    assert b.driver.dnsmasq.pid(BRIDGE) is not None
    assert ping(b.guest_ns, HOST_ADDRESS["b"])
