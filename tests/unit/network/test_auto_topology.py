"""network/auto_topology.py: the auto-allocated subnet's CIDR (a free /24 of the
configured ranges, clear of every network and pool), its exhaustion, vlan mode's
bootable networks, and a lost race leaving only the winner's network."""

from __future__ import annotations

import pytest

from novalet.common.context import RequestContext
from novalet.db import auto_topologies
from novalet.db import network as db_network
from novalet.network.api import NetworkAPI
from novalet.network.auto_topology import (AutoAllocationFailure, AutoTopologyService,
                                           NetworkAmbiguous, UnableToAutoAllocateNetwork)
from tests.unit.network.ipam_fixtures import NetFactory, db, make_net, net, refreshes

__all__ = ["db", "make_net", "net", "refreshes"]


def _member(project_id: str) -> RequestContext:
    return RequestContext(project_id=project_id, roles=["member", "reader"])


async def _cidr_of(service: AutoTopologyService, network_uuid: str) -> str | None:
    return (await db_network.get_network(service.db, network_uuid)).cidr


async def test_the_first_free_24_of_the_tenant_ranges(net: NetworkAPI) -> None:
    service = AutoTopologyService(net)  # the default network holds 10.0.0.0/24
    topology = await service.allocate("p1")
    assert await _cidr_of(service, topology.network_id) == "10.0.1.0/24"
    again = await service.get_topology(RequestContext(project_id="p1", roles=["member"]),
                                       "p1")
    assert again == topology
    second = await service.allocate("p2")
    assert await _cidr_of(service, second.network_id) == "10.0.2.0/24"


async def test_configured_ranges_and_their_exhaustion(make_net: NetFactory) -> None:
    net = await make_net(network_manager="vlan", auto_allocate_subnet_ranges="192.168.8.0/23")
    service = AutoTopologyService(net)
    first, second = await service.allocate("p1"), await service.allocate("p2")
    assert {await _cidr_of(service, t.network_id) for t in (first, second)} == {
        "192.168.8.0/24", "192.168.9.0/24"}
    with pytest.raises(AutoAllocationFailure, match="No free /24"):
        await service.allocate("p3")
    net_flat = await make_net(auto_allocate_subnet_ranges="192.168.8.0/23")
    flat = AutoTopologyService(net_flat)
    # (a flat-mode service over the same rows: no unassigned network to boot on, as the
    # default one is made only at a first start)
    assert [n for n in await db_network.list_networks(net.db, "p3") if n.cidr] == []
    with pytest.raises(UnableToAutoAllocateNetwork, match="No free /24"):
        await flat.network_for_boot(_member("p3"))
    assert [n.label for n in await db_network.project_networks(net.db, "p3")] == []


async def test_vlan_mode_counts_only_the_projects_own_networks(make_net: NetFactory) -> None:
    net = await make_net(network_manager="vlan")
    service = AutoTopologyService(net)
    assert await service.network_for_boot(_member("p1")) is None  # the project's VLAN network, later
    topology = await service.allocate("p1")
    (own,) = await db_network.project_networks(net.db, "p1")
    assert own.uuid == topology.network_id and own.vlan is not None
    assert await service.network_for_boot(_member("p1")) == own.uuid  # the one network now
    await service.allocate("p2")
    await auto_topologies.forget(net.db, "p1", own.id)
    await service.allocate("p1")  # a second own network: ambiguous
    with pytest.raises(NetworkAmbiguous):
        await service.network_for_boot(_member("p1"))


async def test_a_lost_race_removes_its_own_network(net: NetworkAPI,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    service = AutoTopologyService(net)
    winner = await service.allocate("p1")
    # as if a concurrent request had recorded its topology after this one's check
    existing = service._existing
    calls = {"n": 0}

    async def first_none(project_id: str) -> object:
        calls["n"] += 1
        return None if calls["n"] == 1 else await existing(project_id)

    monkeypatch.setattr(service, "_existing", first_none)
    shown = await service.get_topology(RequestContext(project_id="p1", roles=["member"]),
                                       "p1")
    assert shown.network_id == winner.network_id
    labels = [n.label for n in await db_network.project_networks(net.db, "p1")]
    assert labels == ["auto_allocated_network"]  # the loser's network is gone


async def test_a_boot_needs_a_project_and_the_right_to_make_its_network(
        make_net: NetFactory) -> None:
    """Review finding 11: `networks: "auto"` makes the topology only for a project
    the token names and under the caller's create_network rights."""
    net = await make_net(network_manager="vlan")  # rows with no unassigned network
    await AutoTopologyService(net).allocate("p0")  # (a network: flat makes no default)
    service = AutoTopologyService(await make_net())  # flat mode over them
    with pytest.raises(UnableToAutoAllocateNetwork, match="scoped to no project"):
        await service.network_for_boot(RequestContext(project_id=None, roles=["admin"]))
    with pytest.raises(UnableToAutoAllocateNetwork, match="create_network"):
        await service.network_for_boot(RequestContext(project_id="p4", roles=["reader"]))
    assert await db_network.project_networks(net.db, "p4") == []
    assert await service.network_for_boot(_member("p4")) is not None
