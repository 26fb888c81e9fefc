"""Floating IPs: pools, allocation to projects, NAT associations, release."""

from __future__ import annotations

import asyncio

import pytest

from novalet.db import network as db_network
from novalet.network import api as network_api
from novalet.network.api import NetworkAPI, parse_floating_pools
from tests.unit.network.ipam_fixtures import (InstanceFactory, NetFactory, Refreshes, ctx, db,
                                              make_instance, make_net, net, refreshes)

__all__ = ["db", "make_instance", "make_net", "net", "refreshes"]


def test_parse_pools() -> None:
    pools = parse_floating_pools(" public=172.24.4.0/24, lab = 10.9.0.0/28 ,")
    assert [(p.name, p.cidr) for p in pools] == [("public", "172.24.4.0/24"),
                                                 ("lab", "10.9.0.0/28")]
    with pytest.raises(ValueError):
        parse_floating_pools("public")


async def test_pools_from_config(make_net: NetFactory) -> None:
    net = await make_net(floating_ip_pools="public=172.24.4.0/24,lab=10.9.0.0/30")
    assert await net.floating_ip_pools() == ["lab", "public"]


async def test_pool_too_large_is_refused(make_net: NetFactory) -> None:
    with pytest.raises(network_api.NetworkSizeUnsupported):
        await make_net(floating_ip_pools="big=172.16.0.0/16")


async def test_allocate_and_list(net: NetworkAPI) -> None:
    first = await net.allocate_floating_ip(ctx())
    second = await net.allocate_floating_ip(ctx(), "public")
    assert (first.floating.address, second.floating.address) == ("172.24.4.1", "172.24.4.2")
    assert first.floating.pool == "public" and first.fixed_address is None
    listed = await net.list_floating_ips(ctx())
    assert [r.floating.address for r in listed] == ["172.24.4.1", "172.24.4.2"]
    assert await net.list_floating_ips(ctx("p2")) == []


async def test_unknown_and_exhausted_pools(make_net: NetFactory) -> None:
    net = await make_net(floating_ip_pools="tiny=10.9.0.0/30")
    with pytest.raises(network_api.FloatingIpPoolNotFound):
        await net.allocate_floating_ip(ctx(), "nope")
    with pytest.raises(network_api.FloatingIpPoolNotFound):
        await net.allocate_floating_ip(ctx())  # default pool "public" is not configured
    await net.allocate_floating_ip(ctx(), "tiny")
    await net.allocate_floating_ip(ctx(), "tiny")
    with pytest.raises(db_network.NoMoreFloatingIps):
        await net.allocate_floating_ip(ctx(), "tiny")


async def test_concurrent_allocations_get_distinct_addresses(net: NetworkAPI) -> None:
    net.quotas.conf.set("quota", "floating_ips", -1)  # 20 is past the default of 10
    rows = await asyncio.gather(*(net.allocate_floating_ip(ctx()) for _ in range(20)))
    assert len({r.floating.address for r in rows}) == 20


async def test_other_projects_see_404(net: NetworkAPI) -> None:
    mine = await net.allocate_floating_ip(ctx())
    with pytest.raises(db_network.FloatingIpNotFound):
        await net.get_floating_ip(ctx("p2"), mine.floating.id)
    assert (await net.get_floating_ip(ctx("p2", admin=True), mine.floating.id)).floating.id \
        == mine.floating.id
    with pytest.raises(db_network.FloatingIpNotFound):
        await net.get_floating_ip(ctx(), "abc")
    with pytest.raises(db_network.FloatingIpNotFound):
        await net.release_floating_ip(ctx("p2"), mine.floating.id)


async def test_associate_disassociate_release(
        net: NetworkAPI, make_instance: InstanceFactory, refreshes: Refreshes) -> None:
    vm = await make_instance(host="host-7")
    (vif,) = await net.allocate_for_instance(vm.uuid, "p1", "host-7", "vm")
    floating = (await net.allocate_floating_ip(ctx())).floating
    refreshes.calls.clear()
    await net.associate_floating_ip(ctx(), vm, floating.address)
    assert refreshes.hosts == {"host-7"}
    row = await net.get_floating_ip(ctx(), floating.id)
    assert (row.fixed_address, row.instance_uuid) == (vif.fixed_ip, vm.uuid)
    (shown,) = await net.vifs_for_instance(vm.uuid)
    assert shown.floating_ips == [floating.address]
    await net.associate_floating_ip(ctx(), vm, floating.address)  # again: nothing to do
    with pytest.raises(network_api.FloatingIpNotAssociatedWith):
        await net.disassociate_floating_ip(ctx(), await make_instance(), floating.address)
    await net.disassociate_floating_ip(ctx(), vm, floating.address)
    assert (await net.get_floating_ip(ctx(), floating.id)).fixed_address is None
    with pytest.raises(network_api.FloatingIpNotAssociatedWith):
        await net.disassociate_floating_ip(ctx(), vm, floating.address)
    await net.associate_floating_ip(ctx(), vm, floating.address, vif.fixed_ip)
    await net.release_floating_ip(ctx(), floating.id)  # disassociates first
    assert await net.list_floating_ips(ctx()) == []
    assert (await net.vifs_for_instance(vm.uuid))[0].floating_ips == []


async def test_associate_checks(net: NetworkAPI, make_instance: InstanceFactory) -> None:
    vm = await make_instance()
    floating = (await net.allocate_floating_ip(ctx())).floating
    with pytest.raises(network_api.InstanceHasNoFixedIp):
        await net.associate_floating_ip(ctx(), vm, floating.address)
    await net.allocate_for_instance(vm.uuid, "p1", "host-1", "vm")
    with pytest.raises(network_api.FixedAddressNotOnInstance):
        await net.associate_floating_ip(ctx(), vm, floating.address, "10.0.0.99")
    with pytest.raises(db_network.FloatingIpNotFoundForAddress):
        await net.associate_floating_ip(ctx(), vm, "198.51.100.1")
    theirs = (await net.allocate_floating_ip(ctx("p2"))).floating
    with pytest.raises(network_api.FloatingIpNotOwned):
        await net.associate_floating_ip(ctx(), vm, theirs.address)
    unallocated = "172.24.4.100"
    with pytest.raises(network_api.FloatingIpNotOwned):
        await net.associate_floating_ip(ctx(), vm, unallocated)


async def test_reassociation_moves_the_address(net: NetworkAPI, make_instance: InstanceFactory,
                                               refreshes: Refreshes) -> None:
    one, two = await make_instance(host="h1"), await make_instance(host="h2")
    await net.allocate_for_instance(one.uuid, "p1", "h1", "one")
    (vif2,) = await net.allocate_for_instance(two.uuid, "p1", "h2", "two")
    floating = (await net.allocate_floating_ip(ctx())).floating
    await net.associate_floating_ip(ctx(), one, floating.address)
    refreshes.calls.clear()
    await net.associate_floating_ip(ctx(), two, floating.address)
    assert refreshes.hosts == {"h1", "h2"}
    row = await net.get_floating_ip(ctx(), floating.id)
    assert (row.instance_uuid, row.fixed_address) == (two.uuid, vif2.fixed_ip)


async def test_instance_delete_detaches_but_keeps_allocation(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    vm = await make_instance()
    await net.allocate_for_instance(vm.uuid, "p1", "host-1", "vm")
    floating = (await net.allocate_floating_ip(ctx())).floating
    await net.associate_floating_ip(ctx(), vm, floating.address)
    await net.deallocate_for_instance(vm.uuid)
    (row,) = await net.list_floating_ips(ctx())
    assert row.floating.id == floating.id and row.fixed_address is None


async def test_auto_assigned_floating_ip(make_net: NetFactory,
                                         make_instance: InstanceFactory) -> None:
    net = await make_net(auto_assign_floating_ip=True)
    vm = await make_instance()
    (vif,) = await net.allocate_for_instance(vm.uuid, "p1", "host-1", "vm")
    assert vif.floating_ips == ["172.24.4.1"]
    (row,) = await net.list_floating_ips(ctx())
    assert row.floating.auto_assigned and row.instance_uuid == vm.uuid
    with pytest.raises(network_api.CannotDisassociateAutoAssigned):
        await net.disassociate_floating_ip(ctx(), vm, "172.24.4.1")
    await net.deallocate_for_instance(vm.uuid)
    assert await net.list_floating_ips(ctx()) == []  # back in the pool
