"""Port settings on a real bridge and nftables (the lab of test_linux_net.py: guests in
network namespaces on a host namespace): a guest sends from an address of its
allowed address pairs only while the pair is in the state, from any address once
its port security is off, and nothing while its port is administratively down."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from novalet.network.model import HostNetworkState, InstanceNet, PortFilter
from tests.integration.test_linux_net import (
    FLOATING,
    GATEWAY,
    OUTSIDE,
    Lab,
    arun,
    in_netns,
    lab,
    listen,
    sh,
)

__all__ = ["lab"]  # the module's own lab, built by that fixture

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

VIP = "10.251.0.100"
OTHER = "10.251.0.101"


def _with_filter(lab: Lab, port: PortFilter) -> HostNetworkState:
    first, *rest = lab.state.instances
    changed = InstanceNet(first.instance_uuid, first.project_id, first.vifs, first.rules,
                          [port])
    return dataclasses.replace(lab.state, instances=[changed, *rest])


def _ping_from(lab: Lab, source: str) -> bool:
    ns = lab.guests[0].ns
    return sh("ip", "netns", "exec", ns, "ping", "-c1", "-W1", "-I", source, GATEWAY,
              check=False).returncode == 0


async def test_pairs_port_security_and_admin_state(lab: Lab) -> None:
    guest = lab.guests[0]
    for address in (VIP, OTHER):
        sh("ip", "-n", guest.ns, "addr", "add", f"{address}/24", "dev", "eth0")
    try:
        assert _ping_from(lab, guest.vif.fixed_ip)
        assert not _ping_from(lab, VIP), "a guest sent from an address not its own"
        await lab.driver.apply(_with_filter(lab, PortFilter(
            guest.vif.id, address_pairs=[[VIP, guest.vif.address]])))
        assert _ping_from(lab, VIP), "the allowed address pair could not send"
        assert not _ping_from(lab, OTHER)
        await lab.driver.apply(_with_filter(lab, PortFilter(guest.vif.id,
                                                            port_security=False)))
        assert _ping_from(lab, OTHER), "port security off still filtered the guest"
        await lab.driver.apply(_with_filter(lab, PortFilter(guest.vif.id,
                                                            admin_state_up=False)))
        assert not _ping_from(lab, guest.vif.fixed_ip), "a down port passed traffic"
    finally:
        await lab.driver.apply(lab.state)
        for address in (VIP, OTHER):
            sh("ip", "-n", guest.ns, "addr", "del", f"{address}/24", "dev", "eth0",
               check=False)
    assert _ping_from(lab, guest.vif.fixed_ip)


SPOOFED = "10.99.0.5"  # in no network of the host


def _udp_from(ns: str, source: str, target: str, port: int) -> None:
    def go() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((source, 0))
            sock.sendto(source.encode(), (target, port))
    in_netns(ns, go)


def _received(ns: str, port: int, address: str, guest_ns: str, source: str) -> str | None:
    """What a UDP listener in `ns` sees as the source of the guest's datagram, if
    anything arrives."""
    receiver = listen(ns, port, address, kind=socket.SOCK_DGRAM)
    receiver.settimeout(0.7)
    try:
        _udp_from(guest_ns, source, address, port)
        return str(receiver.recvfrom(100)[1][0])
    except TimeoutError:
        return None
    finally:
        receiver.close()


async def test_port_security_off_does_not_spoof_beyond_its_network(lab: Lab) -> None:
    """Review finding 2: an open port may send from any address on its bridge, but
    the host neither routes a source outside the network nor takes it in."""
    guest = lab.guests[0]
    sh("ip", "-n", guest.ns, "addr", "add", f"{SPOOFED}/32", "dev", "eth0")
    try:
        await lab.driver.apply(_with_filter(lab, PortFilter(guest.vif.id, port_security=False)))
        fixed = guest.vif.fixed_ip
        assert await arun(_received, lab.outside, 9100, OUTSIDE, guest.ns, fixed) == FLOATING
        assert await arun(_received, lab.outside, 9100, OUTSIDE, guest.ns, SPOOFED) is None, \
            "a spoofed source was routed out"
        assert await arun(_received, lab.host, 9101, GATEWAY, guest.ns, fixed) == fixed
        assert await arun(_received, lab.host, 9101, GATEWAY, guest.ns, SPOOFED) is None, \
            "the host took in a spoofed source"
    finally:
        await lab.driver.apply(lab.state)
        sh("ip", "-n", guest.ns, "addr", "del", f"{SPOOFED}/32", "dev", "eth0", check=False)
