"""Issue 14, finding 2: a multi-host compute node wiped its host's firewall.

The compute process used to build a LinuxNetDriver of its own, which had never
applied a state; its `plug` rendered the nftables ruleset from that empty state
and so deleted the NAT, metadata DNAT, floating IP and security group tables of
the network service's driver on the same host. A driver that holds no applied
state must not render the firewall at all.
"""

from __future__ import annotations

from pathlib import Path

from novalet.network.linux import LinuxNetDriver
from novalet.network.model import HostNetworkState
from tests.unit.network.linux.conftest import make_vif
from tests.unit.network.linux.fakes import FakeNetlink, FakeRunner


async def test_a_plug_from_a_driver_that_never_applied_does_not_wipe_the_firewall(
        tmp_path: Path, runner: FakeRunner, netlink: FakeNetlink,
        state: HostNetworkState) -> None:
    netlink.add("eth0", None, up=True)
    network_service = LinuxNetDriver(tmp_path / "state", runner, netlink=netlink)
    await network_service.apply(state)
    applied = runner.nft_scripts()[-1]
    assert "table ip novalet_nat {" in applied and "dnat to 10.0.0.11" in applied

    # A second driver on the same host (what the compute process used to build):
    # its plug (build, reboot, start, rescue, resize, attach) sees no state.
    other = LinuxNetDriver(tmp_path / "state", runner, netlink=netlink)
    before = len(runner.nft_scripts())
    await other.plug(make_vif(1))
    wipes = [s for s in runner.nft_scripts()[before:] if "delete table ip novalet_nat" in s]
    assert not wipes, f"a plug without the host's state replaced the firewall:\n{wipes[0]}"
    assert netlink.master_of(make_vif(1).tap) == "nvbr100"  # the tap is still plugged
