"""External networks (db/external_networks.py): a subnet on one makes floating_ips
rows, not fixed_ips; its pools can change and it can go while no address is held;
a configured pool is one, made once; a rename renames the proxy's pool."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from novalet.common.context import RequestContext
from novalet.db import network as db_network
from novalet.db.engine import Database
from novalet.db.models import FixedIp, FloatingIp, Network
from novalet.network import subnets as sn
from novalet.network.api import NetworkAPI
from novalet.network.networks import NetworkService
from novalet.network.subnets import SubnetChanges, SubnetService, SubnetSpec
from tests.unit.network.ipam_fixtures import Refreshes, db, make_net, net, refreshes

__all__ = ["db", "make_net", "net", "refreshes"]

ADMIN = RequestContext(user_id="a", project_id="admin", roles=["admin"])
MEMBER = RequestContext(user_id="u", project_id="p1", roles=["member"])


async def _floating(db: Database, network_id: int) -> dict[str, str | None]:
    async with db.transaction() as s:
        return {r.address: r.project_id for r in (await s.execute(select(FloatingIp).where(
            FloatingIp.network_id == network_id))).scalars()}


async def _external(db: Database, name: str = "ext") -> Network:
    network = Network(uuid=str(uuid.uuid4()), label=name, bridge="", external=True,
                      project_id="admin", multi_host=False)
    async with db.transaction() as s:
        s.add(network)
    return network


async def test_a_subnet_on_an_external_network_makes_floating_ips(
        db: Database, net: NetworkAPI, refreshes: Refreshes) -> None:
    network = await _external(db)
    subnets = SubnetService(db, net.conf, refresh_hosts=refreshes)
    info = await subnets.create_subnet(ADMIN, SubnetSpec(
        network_id=network.uuid, cidr="198.51.100.0/28", gateway_ip="198.51.100.1",
        allocation_pools=[{"start": "198.51.100.4", "end": "198.51.100.6"}]))
    assert await _floating(db, network.id) == dict.fromkeys(
        ["198.51.100.4", "198.51.100.5", "198.51.100.6"])
    async with db.transaction() as s:
        fixed = (await s.execute(select(FixedIp).where(
            FixedIp.network_id == network.id))).scalars().all()
    assert fixed == []
    assert "ext" in await db_network.floating_pools(db)  # the proxy's pool name
    # a project holds one; the pools shrink (it keeps it) and grow
    await net.allocate_floating_ip(MEMBER, "ext")
    held = [a for a, p in (await _floating(db, network.id)).items() if p == "p1"]
    await subnets.update_subnet(ADMIN, info.id, SubnetChanges(
        allocation_pools=[{"start": "198.51.100.8", "end": "198.51.100.9"}]))
    assert sorted(await _floating(db, network.id)) == sorted(
        held + ["198.51.100.8", "198.51.100.9"])
    # the subnet (and the network) can't go while an address is held
    try:
        await subnets.delete_subnet(ADMIN, info.id)
    except sn.SubnetInUse:
        pass
    else:
        raise AssertionError("deleted a subnet with a held floating IP")
    floating = (await net.list_floating_ips(MEMBER))[0]
    await net.release_floating_ip(MEMBER, floating.floating.id)
    await subnets.delete_subnet(ADMIN, info.id)
    assert await _floating(db, network.id) == {}


async def test_rename_renames_the_pool_and_router_external_is_fixed_with_a_subnet(
        db: Database, net: NetworkAPI) -> None:
    networks = NetworkService(net)
    (public,) = [n for n in await networks.list_network(ADMIN) if n.row.external]
    assert (public.row.label, public.shared, len(public.subnets)) == ("public", False, 1)
    await networks.update_network(ADMIN, public.row.uuid, {"name": "internet"})
    assert await db_network.floating_pools(db) == ["internet"]
    try:
        await networks.update_network(ADMIN, public.row.uuid, {"router:external": False})
    except Exception as exc:  # noqa: BLE001 (the type is the assertion)
        assert type(exc).__name__ == "InvalidInput"
    else:
        raise AssertionError("an external network with a subnet became a guest network")
    # ensure_defaults again: the renamed network keeps the pool, nothing is added
    await net.ensure_defaults()
    externals = [n for n in await networks.list_network(ADMIN) if n.row.external]
    assert [n.row.uuid for n in externals] == [public.row.uuid]
    assert len(await _floating(db, public.row.id)) == 254
