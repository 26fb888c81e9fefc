"""Port settings on a real bridge and nftables (the lab of test_linux_net.py: guests in
network namespaces on a host namespace): a guest sends from an address of its
allowed address pairs only while the pair is in the state, from any address once
its port security is off, and nothing while its port is administratively down."""

from __future__ import annotations

import dataclasses

import pytest

from novalet.network.model import HostNetworkState, InstanceNet, PortFilter
from tests.integration.test_linux_net import GATEWAY, Lab, lab, sh

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
