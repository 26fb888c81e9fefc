"""Issue 14, item 5: a network service of the previous release (its hand-written
HostNetworkState parser, conductor RPC 1.0) reads its host's state from this
conductor, which now sends a HostNetworkState model; and this release's network
service reads both the model and the untagged state an older conductor sent."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.network.manager import NetworkManager
from novalet.network.model import (
    FloatingNat,
    HostNetworkState,
    InstanceNet,
    NetworkOnHost,
    SecurityRule,
    Vif,
)
from novalet.network.rpcapi import NetworkStateRPC
from novalet.rpc import versions
from novalet.rpc.bus import NoSuchMethod
from novalet.rpc.inprocess import InProcessBus
from tests.unit.conductor.conftest import Served
from tests.unit.network.test_vif_seam import RecordingDriver, make_vif


def old_host_state_from_dict(data: dict[str, Any]) -> HostNetworkState:
    """HostNetworkState.from_dict as the previous release wrote it by hand."""
    def network(n: dict[str, Any]) -> NetworkOnHost:
        return NetworkOnHost(**{**n, "hosts": {mac: (ip, name) for mac, (ip, name)
                                               in n.get("hosts", {}).items()}})

    def instance(i: dict[str, Any]) -> InstanceNet:
        names = {f.name for f in dataclasses.fields(Vif)}
        return InstanceNet(instance_uuid=i["instance_uuid"], project_id=i["project_id"],
                           vifs=[Vif(**{k: v for k, v in d.items() if k in names})
                                 for d in i["vifs"]],
                           rules=[SecurityRule(**r) for r in i.get("rules", [])])

    return HostNetworkState(host=data["host"],
                            networks=[network(n) for n in data.get("networks", [])],
                            instances=[instance(i) for i in data.get("instances", [])],
                            floating=[FloatingNat(**f) for f in data.get("floating", [])],
                            metadata_host=data.get("metadata_host", "127.0.0.1"),
                            metadata_port=data.get("metadata_port", 8775),
                            public_interface=data.get("public_interface"))


def sample_state() -> HostNetworkState:
    return HostNetworkState(
        host="h1",
        networks=[NetworkOnHost(uuid="net-1", label="private", cidr="10.0.0.0/24",
                                gateway="10.0.0.1", bridge="nvbr100",
                                dhcp_start="10.0.0.2", netmask="255.255.255.0",
                                hosts={"52:54:00:00:00:01": ("10.0.0.11", "vm1")})],
        instances=[InstanceNet("inst-1", "p1", [make_vif()],
                               [SecurityRule("tcp", 22, 22, cidr="0.0.0.0/0"), *EGRESS])],
        floating=[FloatingNat("192.0.2.10", "10.0.0.11", "eth0")],
        public_interface="eth0", egress_filtered=True)


# what every group has since HostNetworkState 1.1 (conductor RPC 1.6)
EGRESS = [SecurityRule(None, None, None, cidr="0.0.0.0/0", direction="egress"),
          SecurityRule(None, None, None, cidr="::/0", direction="egress", ethertype="IPv6"),
          SecurityRule(None, None, None, remote_ips=["10.0.0.11"], ethertype="IPv6")]


def as_previous_release_sees_it(state: HostNetworkState) -> HostNetworkState:
    """`state` with what HostNetworkState 1.0 had: IPv4 ingress rules, egress open."""
    instances = [dataclasses.replace(i, rules=[r for r in i.rules if r not in EGRESS])
                 for i in state.instances]
    return dataclasses.replace(state, instances=instances, egress_filtered=False)


async def test_host_state_reads_the_same_both_ways(served: Served,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    state = sample_state()

    async def host_state(db: Any, conf: Any, host: str) -> HostNetworkState:
        return dataclasses.replace(state, host=host)

    monkeypatch.setattr("novalet.network.state.host_state", host_state)
    # this release's network service: a HostNetworkState model with its parts
    assert await NetworkStateRPC(served.bus).host_state("h1") == state
    # the previous release's, with its hand-written parser, from this conductor
    # (asking at 1.0: the state backported to HostNetworkState 1.0, only its IPv4
    # ingress rules, which that release's firewall renders as it always did)
    data = await served.bus.call(RequestContext.admin(), "conductor", "network_host_state",
                                 {"host": "h1"}, version="1.0")
    assert data["_version"] == "1.0"
    assert old_host_state_from_dict(data) == as_previous_release_sees_it(state)
    # and this release's parser reads what the previous conductor sent (untagged):
    # egress unfiltered, as that conductor's network service had it
    untagged = dataclasses.asdict(as_previous_release_sees_it(state))
    del untagged["egress_filtered"]
    for instance in untagged["instances"]:
        for rule in instance["rules"]:
            del rule["direction"], rule["ethertype"]
    assert HostNetworkState.from_dict(untagged) == as_previous_release_sees_it(state)


def pinned_conductor(version: str) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "host", "h1")
    conf.set("upgrade_levels", "conductor", version)
    return conf


async def test_a_network_service_pinned_below_1_6_reads_egress_unfiltered(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding 8: under `[upgrade_levels] conductor = 1.5` the network service
    asks at 1.0 and gets the backported state, which it renders with all egress open."""
    state = sample_state()

    async def host_state(db: Any, conf: Any, host: str) -> HostNetworkState:
        return state

    monkeypatch.setattr("novalet.network.state.host_state", host_state)
    manager = NetworkManager(pinned_conductor("1.5"), served.bus, RecordingDriver())
    read = await manager.state_rpc.host_state("h1")
    assert read == as_previous_release_sees_it(state) and not read.egress_filtered
    unpinned = NetworkManager(pinned_conductor("1.6"), served.bus, RecordingDriver())
    assert await unpinned.state_rpc.host_state("h1") == state


class ConductorOf15:
    """A conductor not yet upgraded (RPC 1.5): the untagged state, egress unknown."""

    RPC_VERSION = "1.5"

    async def network_host_state(self, ctx: RequestContext, host: str) -> dict[str, Any]:
        data = dataclasses.asdict(as_previous_release_sees_it(sample_state()))
        del data["egress_filtered"]
        for instance in data["instances"]:
            for rule in instance["rules"]:
                del rule["direction"], rule["ethertype"]
        return data


async def test_a_pinned_network_service_reads_a_conductor_not_yet_upgraded() -> None:
    bus = InProcessBus(default_timeout=5)
    await bus.serve("conductor", ConductorOf15())
    try:
        with pytest.raises(NoSuchMethod):  # unpinned: 1.6 is newer than it serves
            await NetworkStateRPC(bus).host_state("h1")
        caps = versions.Caps.from_conf(pinned_conductor("1.5"))
        read = await NetworkStateRPC(bus, caps).host_state("h1")
        assert read == as_previous_release_sees_it(sample_state())
        assert not read.egress_filtered
    finally:
        await bus.close()
