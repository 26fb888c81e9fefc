"""Reproducers of the first review of the network API's networks: a bridge of
their own in the flat modes, a networks quota, bulk creates all-or-none in one
transaction with VLANs picked once, and an auto-picked VLAN retried."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select

from novalet.db import networks as db_networks
from novalet.db.engine import Database
from novalet.db.models import Network
from novalet.network import networks as nn
from novalet.network.networks import NetworkService
from novalet.network.state import host_state
from novalet.network.subnets import SubnetService, SubnetSpec
from novalet.policy import PolicyNotAuthorized
from tests.unit.network.ipam_fixtures import (NetFactory, Refreshes, db, make_net, net,
                                              refreshes)
from tests.unit.network.test_subnets import ADMIN, member

__all__ = ["db", "make_net", "net", "refreshes"]


async def network_count(db: Database) -> int:
    """Guest networks (the external network of the configured pool not counted)."""
    async with db.transaction() as s:
        return int((await s.execute(select(func.count(Network.id)).where(
            Network.external.is_(False)))).scalar_one())


async def test_flat_mode_networks_get_bridges_of_their_own(
        make_net: NetFactory, refreshes: Refreshes) -> None:
    """Two served network-API networks: two more bridges, no uplink, and the default
    network keeps its bridge and uplink."""
    nova = await make_net(flat_interface="eth9")
    service, subnets = NetworkService(nova), SubnetService(nova.db, nova.conf, refreshes)
    before = {n.uuid: n for n in (await host_state(nova.db, nova.conf, "h1")).networks}
    made = [await service.create_network(member(), {"name": name}) for name in ("a", "b")]
    for record, cidr in zip(made, ("10.1.0.0/24", "10.2.0.0/24"), strict=True):
        await subnets.create_subnet(member(), SubnetSpec(network_id=record.row.uuid,
                                                         cidr=cidr))
    served = {n.uuid: n for n in (await host_state(nova.db, nova.conf, "h1")).networks}
    assert {u: (n.bridge, n.interface) for u, n in before.items()} == {
        u: (served[u].bridge, served[u].interface) for u in before}
    (default,) = before.values()
    assert (default.bridge, default.interface) == ("nvbr0", "eth9")
    ours = [served[r.row.uuid] for r in made]
    assert [n.bridge for n in ours] == [f"nvnet{r.row.id}" for r in made]
    assert [n.interface for n in ours] == [None, None]
    assert len({n.bridge for n in served.values()}) == 3
    assert all(len(n.bridge) <= 15 for n in served.values())


async def test_the_networks_quota_holds_for_singles_and_bulks(make_net: NetFactory) -> None:
    nova = await make_net()
    nova.conf.set("quota", "networks", 3)
    service = NetworkService(nova)
    await service.create_network(member(), {"name": "one"})
    with pytest.raises(db_networks.TooManyNetworks, match="has 1 of 3 networks"):
        await service.create_networks(member(), [{"name": "x"}] * 3)
    await service.create_networks(member(), [{"name": "x"}] * 2)
    with pytest.raises(db_networks.TooManyNetworks):
        await service.create_network(member(), {"name": "four"})
    await service.create_network(member("p2"), {"name": "other project"})
    assert await network_count(nova.db) == 1 + 3 + 1  # the default network too


async def test_a_bulk_is_all_or_none(make_net: NetFactory) -> None:
    nova = await make_net()
    service = NetworkService(nova)
    with pytest.raises(PolicyNotAuthorized):
        await service.create_networks(member(), [{"name": "ok"}, {"shared": True}])
    assert await network_count(nova.db) == 1


async def test_a_bulk_of_a_hundred_is_one_quick_transaction(make_net: NetFactory) -> None:
    nova = await make_net(network_manager="vlan", fixed_range="10.8.0.0/16", network_size=64)
    service = NetworkService(nova)
    started = time.monotonic()
    made = await service.create_networks(member(), [{"name": f"n{i}"} for i in range(100)])
    assert time.monotonic() - started < 3.0
    vlans = [r.row.vlan for r in made]
    assert len(set(vlans)) == 100 and vlans == sorted(vlans)
    assert [r.row.bridge for r in made] == [f"nvbr{v}" for v in vlans]


async def test_an_auto_picked_vlan_taken_concurrently_is_picked_again(
        make_net: NetFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    nova = await make_net(network_manager="vlan", fixed_range="10.8.0.0/16", network_size=64)
    service = NetworkService(nova)
    real = db_networks.create_bare_networks
    calls: list[int] = []

    async def racing(*args: Any, **kwargs: Any) -> list[Network]:
        calls.append(1)
        if len(calls) == 1:  # another creator won the VLAN between plan and insert
            raise db_networks.DuplicateVlan(vlan=100)
        return await real(*args, **kwargs)

    monkeypatch.setattr(db_networks, "create_bare_networks", racing)
    record = await service.create_network(member(), {"name": "n"})
    assert record.row.vlan is not None and len(calls) == 2
    with pytest.raises(nn.VlanIdInUse):  # an asked VLAN is not changed behind the caller
        calls.clear()
        await service.create_network(ADMIN, {"provider:segmentation_id": 200})


async def test_concurrent_creators_stay_within_the_quota(tmp_path: Any) -> None:
    """Six creators at once against a quota of 3: exactly 3 networks (on the
    NOVALET_TEST_DATABASE server too, where each waits for the one before)."""
    import asyncio

    from novalet.db import migrate
    from novalet.network.api import NetworkAPI
    from tests import server_db
    from tests.unit.network.ipam_fixtures import make_conf

    server = server_db.server_url()
    url = (await server_db.create_database(server) if server
           else f"sqlite:///{tmp_path / 'q.sqlite'}")
    database = Database(url)
    try:
        await migrate.sync(database)
        nova = NetworkAPI(database, make_conf(network_manager="vlan",
                                              fixed_range="10.8.0.0/16"))
        nova.conf.set("quota", "networks", 3)
        results = await asyncio.gather(
            *(NetworkService(nova).create_network(member(), {"name": f"n{i}"})
              for i in range(6)), return_exceptions=True)
        made = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, db_networks.TooManyNetworks)]
        assert (len(made), len(refused)) == (3, 3), results
        assert len({r.row.vlan for r in made}) == 3
    finally:
        await database.close()
        if server:
            await server_db.drop_database(server, url)
