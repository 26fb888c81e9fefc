"""Floating IP association as a compare-and-swap (review finding 7): an association
decided on a stale read (the address was released and given to another project, or
associated elsewhere meanwhile) changes nothing and says so; a fixed IP gets at most
one floating IP of an external network through the network API, even when two
associations race."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from novalet.db import floating_ips as db_floating
from novalet.db import network as db_network
from novalet.db.models import FloatingIp
from novalet.network.api import NetworkAPI
from tests.unit.network.ipam_fixtures import (InstanceFactory, NetFactory, ctx, db, make_instance,
                                              make_net, net, refreshes)

__all__ = ["db", "make_instance", "make_net", "net", "refreshes"]


async def _give(net: NetworkAPI, floating_id: int, project_id: str) -> None:
    async with net.db.transaction() as s:
        await s.execute(update(FloatingIp).where(FloatingIp.id == floating_id).values(
            project_id=project_id))


async def _fixed_id(net: NetworkAPI, make_instance: InstanceFactory, name: str) -> int:
    vm = await make_instance(host="h1")
    (vif,) = await net.allocate_for_instance(vm.uuid, "p1", "h1", name)
    return int((await db_network.fixed_ip_by_address(net.db, str(vif.fixed_ip))).fixed.id)


async def test_a_released_and_reallocated_address_is_not_associated(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    fixed = await _fixed_id(net, make_instance, "vm")
    mine = (await net.allocate_floating_ip(ctx())).floating  # read by p1's request...
    await net.release_floating_ip(ctx(), mine.id)  # ...released meanwhile
    await _give(net, mine.id, "p2")  # and p2 got the same address
    with pytest.raises(db_floating.FloatingIpMoved, match="changed while"):
        await db_network.associate_floating_ip(net.db, mine.id, fixed, "h1", None,
                                               owner="p1", old_fixed_ip_id=None)
    row = await db_network.get_floating_ip(net.db, mine.id)
    assert (row.floating.project_id, row.fixed_address) == ("p2", None)


async def test_an_address_associated_meanwhile_is_not_moved(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    one = await _fixed_id(net, make_instance, "one")
    two = await _fixed_id(net, make_instance, "two")
    floating = (await net.allocate_floating_ip(ctx())).floating
    await db_network.associate_floating_ip(net.db, floating.id, one, "h1", None,
                                           owner="p1", old_fixed_ip_id=None)
    with pytest.raises(db_floating.FloatingIpMoved):  # decided when it was unassociated
        await db_network.associate_floating_ip(net.db, floating.id, two, "h1", None,
                                               owner="p1", old_fixed_ip_id=None)
    await db_network.associate_floating_ip(net.db, floating.id, two, "h1", None,
                                           owner="p1", old_fixed_ip_id=one)  # a move
    row = await db_network.get_floating_ip(net.db, floating.id)
    assert row.floating.fixed_ip_id == two


async def test_two_racing_associations_leave_one_floating_ip_on_the_fixed_ip(
        make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net()
    fixed = await _fixed_id(net, make_instance, "vm")
    first = (await net.allocate_floating_ip(ctx())).floating
    second = (await net.allocate_floating_ip(ctx())).floating
    results = await asyncio.gather(*(
        db_network.associate_floating_ip(net.db, f.id, fixed, "h1", None, owner="p1",
                                         old_fixed_ip_id=None, exclusive=True)
        for f in (first, second)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, db_floating.FixedIpHasFloating)]
    assert len(refused) == 1 and results.count(None) == 1
    rows = [await db_network.get_floating_ip(net.db, f.id) for f in (first, second)]
    assert sorted(r.floating.fixed_ip_id is not None for r in rows) == [False, True]


async def test_the_compute_proxy_refuses_a_stale_association(
        net: NetworkAPI, make_instance: InstanceFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    vm = await make_instance(host="h1")
    await net.allocate_for_instance(vm.uuid, "p1", "h1", "vm")
    floating = (await net.allocate_floating_ip(ctx())).floating
    read = db_network.get_floating_ip_by_address

    async def read_then_lose_it(db: object, address: str) -> db_network.FloatingRow:
        row = await read(net.db, address)  # p1 holds it here...
        await db_network.release_floating_ip(net.db, row.floating.id)  # ...then not
        await _give(net, row.floating.id, "p2")
        return row

    monkeypatch.setattr(db_network, "get_floating_ip_by_address", read_then_lose_it)
    with pytest.raises(db_floating.FloatingIpMoved):
        await net.associate_floating_ip(ctx(), vm, floating.address)
    monkeypatch.undo()
    row = await db_network.get_floating_ip(net.db, floating.id)
    assert (row.floating.project_id, row.fixed_address) == ("p2", None)


async def test_a_stale_release_leaves_another_projects_address_held(
        net: NetworkAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """p1's release read the row while p1 held it; it was released and given to p2
    meanwhile: p2 keeps it, and p1 is told (409)."""
    floating = (await net.allocate_floating_ip(ctx())).floating
    read = db_network.get_floating_ip

    async def read_then_lose_it(db: object, floating_id: int) -> db_network.FloatingRow:
        row = await read(net.db, floating_id)
        await db_network.release_floating_ip(net.db, floating_id)
        await _give(net, floating_id, "p2")
        return row

    monkeypatch.setattr(db_network, "get_floating_ip", read_then_lose_it)
    with pytest.raises(db_floating.FloatingIpMoved):
        await net.release_floating_ip(ctx(), floating.id)
    monkeypatch.undo()
    assert (await db_network.get_floating_ip(net.db, floating.id)).floating.project_id == "p2"


async def test_a_stale_disassociation_leaves_a_new_association(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    one = await _fixed_id(net, make_instance, "one")
    two = await _fixed_id(net, make_instance, "two")
    floating = (await net.allocate_floating_ip(ctx())).floating
    await db_network.associate_floating_ip(net.db, floating.id, one, "h1", None)
    await db_network.associate_floating_ip(net.db, floating.id, two, "h1", None,
                                           old_fixed_ip_id=one)  # moved meanwhile
    assert not await db_network.disassociate_floating_ip(net.db, floating.id, owner="p1",
                                                         fixed_ip_id=one)
    assert not await db_network.disassociate_floating_ip(net.db, floating.id, owner="p2")
    row = await db_network.get_floating_ip(net.db, floating.id)
    assert row.floating.fixed_ip_id == two
    assert await db_network.disassociate_floating_ip(net.db, floating.id, owner="p1",
                                                     fixed_ip_id=two)
