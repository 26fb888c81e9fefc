"""Fixed IP management: networks from CIDRs, race-free allocation, release, VLAN networks."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from novalet import exceptions
from novalet.db import network as db_network
from novalet.db.engine import Database
from novalet.db.models import FixedIp, FloatingIp, VirtualInterface
from novalet.network import api as network_api
from novalet.network.api import NetworkAPI
from tests.unit.network.ipam_fixtures import (InstanceFactory, NetFactory, Refreshes, ctx, db,
                                              make_conf, make_instance, make_net, net,
                                              refreshes)

__all__ = ["db", "make_instance", "make_net", "net", "refreshes"]


async def _fixed_rows(db: Database, network_id: int) -> list[FixedIp]:
    async with db.transaction() as s:
        return list((await s.execute(select(FixedIp).where(
            FixedIp.network_id == network_id).order_by(FixedIp.id))).scalars())


async def test_default_network_from_fixed_range(db: Database, net: NetworkAPI) -> None:
    (network,) = await db_network.list_networks(db)
    assert (network.label, network.cidr, network.gateway, network.dhcp_start) == (
        "private", "10.0.0.0/24", "10.0.0.1", "10.0.0.2")
    assert (network.netmask, network.broadcast, network.bridge, network.vlan) == (
        "255.255.255.0", "10.0.0.255", "nvbr0", None)
    rows = await _fixed_rows(db, network.id)
    assert len(rows) == 256
    assert [r.address for r in rows if r.reserved] == ["10.0.0.0", "10.0.0.1", "10.0.0.255"]


async def test_ensure_defaults_is_idempotent(db: Database, net: NetworkAPI) -> None:
    await net.ensure_defaults()
    assert len(await db_network.list_networks(db)) == 1
    assert await net.floating_ip_pools() == ["public"]
    async with db.transaction() as s:
        count = (await s.execute(select(func.count(FloatingIp.id)))).scalar_one()
    assert count == 254  # 172.24.4.1 .. .254


async def test_allocate_gives_first_free_address_and_a_mac(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    instance = await make_instance()
    (vif,) = await net.allocate_for_instance(instance.uuid, "p1", "host-1", "vm1")
    assert vif.fixed_ip == "10.0.0.2"
    assert vif.address.startswith("fa:16:3e:") and len(vif.address) == 17
    assert (vif.bridge, vif.cidr, vif.gateway, vif.dns, vif.dhcp, vif.network_label) == (
        "nvbr0", "10.0.0.0/24", "10.0.0.1", ["10.0.0.1"], True, "private")
    assert vif.tap == f"tap{vif.id[:11]}"
    assert await net.vifs_for_instance(instance.uuid) == [vif]


async def test_allocation_is_idempotent(net: NetworkAPI, make_instance: InstanceFactory) -> None:
    instance = await make_instance()
    first = await net.allocate_for_instance(instance.uuid, "p1", "host-1", "vm1")
    again = await net.allocate_for_instance(instance.uuid, "p1", "host-2", "vm1")
    assert first == again


async def test_thirty_concurrent_allocations_never_share_an_address(
        db: Database, net: NetworkAPI, make_instance: InstanceFactory) -> None:
    instances = [await make_instance() for _ in range(30)]
    results = await asyncio.gather(*(
        net.allocate_for_instance(i.uuid, "p1", "host-1", i.hostname) for i in instances))
    addresses = [vifs[0].fixed_ip for vifs in results]
    macs = [vifs[0].address for vifs in results]
    assert len(set(addresses)) == 30 and len(set(macs)) == 30
    assert sorted(addresses, key=lambda a: int(a.rsplit(".", 1)[1])) == [
        f"10.0.0.{n}" for n in range(2, 32)]
    async with db.transaction() as s:
        owners = (await s.execute(select(FixedIp.instance_uuid).where(
            FixedIp.instance_uuid.is_not(None)))).scalars().all()
    assert sorted(owners) == sorted(i.uuid for i in instances)


async def test_claim_loses_a_race_and_takes_another_row(
        db: Database, net: NetworkAPI, make_instance: InstanceFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a concurrent allocator (as on a server database) winning the
    candidate between our SELECT and our compare-and-swap UPDATE."""
    first, second = await make_instance(), await make_instance()
    real_claim = db_network._claim_fixed_ip
    stolen: list[str] = []

    async def racing_claim(s, network_id, instance_uuid, vif_id, host, address):  # type: ignore[no-untyped-def]
        if not stolen:
            from sqlalchemy import update
            stolen.append("10.0.0.2")
            await s.execute(update(FixedIp).where(FixedIp.address == "10.0.0.2").values(
                instance_uuid=first.uuid, allocated=True))
        return await real_claim(s, network_id, instance_uuid, vif_id, host, address)

    monkeypatch.setattr(db_network, "_claim_fixed_ip", racing_claim)
    (vif,) = await net.allocate_for_instance(second.uuid, "p1", "host-1", "vm2")
    assert vif.fixed_ip == "10.0.0.3"


async def test_full_network_fails_and_leaves_nothing(
        db: Database, make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(fixed_range="10.9.0.0/29")  # .2 .. .6 are free
    for _ in range(5):
        instance = await make_instance()
        await net.allocate_for_instance(instance.uuid, "p1", "host-1", "vm")
    last = await make_instance()
    with pytest.raises(db_network.NoMoreFixedIps):
        await net.allocate_for_instance(last.uuid, "p1", "host-1", "vm")
    async with db.transaction() as s:
        vifs = (await s.execute(select(VirtualInterface).where(
            VirtualInterface.instance_uuid == last.uuid))).scalars().all()
    assert vifs == []
    assert await net.instance_security_groups(ctx(), last.uuid) == []


async def test_release_returns_the_address_and_it_is_reused_last(
        db: Database, net: NetworkAPI, make_instance: InstanceFactory) -> None:
    one, two = await make_instance(), await make_instance()
    (vif,) = await net.allocate_for_instance(one.uuid, "p1", "host-1", "vm1")
    released = await net.deallocate_for_instance(one.uuid)
    assert [v.fixed_ip for v in released] == [vif.fixed_ip]
    assert await net.vifs_for_instance(one.uuid) == []
    assert await net.instance_security_groups(ctx(), one.uuid) == []
    (again,) = await net.allocate_for_instance(two.uuid, "p1", "host-1", "vm2")
    assert again.fixed_ip == "10.0.0.3"  # the released .2 waits until others are used
    assert again.address != vif.address


async def test_requested_network_and_address(net: NetworkAPI, make_instance: InstanceFactory
                                             ) -> None:
    other = await net.create_network(ctx(admin=True), label="second", cidr="192.168.50.0/24")
    instance = await make_instance()
    await net.check_requested_networks("p1", [(other.uuid, "192.168.50.77")])
    (vif,) = await net.allocate_for_instance(instance.uuid, "p1", "host-1", "vm1",
                                             requested_networks=[(other.uuid, "192.168.50.77")])
    assert (vif.fixed_ip, vif.network_label) == ("192.168.50.77", "second")
    with pytest.raises(db_network.FixedIpUnavailable):
        await net.check_requested_networks("p1", [(other.uuid, "192.168.50.77")])
    with pytest.raises(db_network.FixedIpUnavailable):
        await net.check_requested_networks("p1", [(other.uuid, "192.168.50.1")])  # gateway
    with pytest.raises(db_network.FixedIpUnavailable):
        await net.check_requested_networks("p1", [(other.uuid, "10.0.0.5")])
    with pytest.raises(network_api.NetworkNotFoundForRequest):
        await net.check_requested_networks("p1", [("no-such-network", None)])
    # a network may repeat (a NIC each), an address not
    await net.check_requested_networks("p1", [(other.uuid, None), (other.uuid, None)])
    with pytest.raises(network_api.DuplicateAddressRequested):
        await net.check_requested_networks("p1", [(other.uuid, "192.168.50.78"),
                                                  (other.uuid, "192.168.50.78")])


async def test_flat_mode_has_no_dhcp(make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(network_manager="flat", dns1="9.9.9.9")
    instance = await make_instance()
    (vif,) = await net.allocate_for_instance(instance.uuid, "p1", "host-1", "vm1")
    assert (vif.dhcp, vif.dns) == (False, ["9.9.9.9"])


@pytest.mark.parametrize(("cidr", "error"), [
    ("10.0.0.128/25", db_network.CidrConflict),     # inside the default network
    ("10.0.0.0/16", network_api.NetworkSizeUnsupported),
    ("10.7.0.0/31", network_api.NetworkSizeUnsupported),
    ("fd00::/64", network_api.Ipv6Unsupported),
    ("10.7.0.0/33", network_api.InvalidCidr),
    ("not-a-cidr", network_api.InvalidCidr),
])
async def test_create_network_refuses(net: NetworkAPI, cidr: str,
                                      error: type[Exception]) -> None:
    with pytest.raises(error):
        await net.create_network(ctx(admin=True), label="x", cidr=cidr)


async def test_create_network_options(db: Database, net: NetworkAPI) -> None:
    network = await net.create_network(
        ctx(admin=True), label="lab", cidr="10.20.0.0/28", gateway="10.20.0.14",
        dns1="1.1.1.1", allowed_start="10.20.0.4", allowed_end="10.20.0.10", mtu=1400)
    assert (network.gateway, network.dhcp_start, network.dns1, network.mtu) == (
        "10.20.0.14", "10.20.0.4", "1.1.1.1", 1400)
    rows = await _fixed_rows(db, network.id)
    free = [r.address for r in rows if not r.reserved]
    assert free == [f"10.20.0.{n}" for n in range(4, 11)]
    with pytest.raises(network_api.AddressOutOfRange):
        await net.create_network(ctx(admin=True), label="x", cidr="10.21.0.0/28",
                                 gateway="10.22.0.1")


async def test_delete_network_refused_while_used(
        db: Database, net: NetworkAPI, make_instance: InstanceFactory) -> None:
    (network,) = await db_network.list_networks(db)
    instance = await make_instance()
    await net.allocate_for_instance(instance.uuid, "p1", "host-1", "vm1")
    with pytest.raises(db_network.NetworkInUse):
        await net.delete_network(ctx(admin=True), network.uuid)
    await net.deallocate_for_instance(instance.uuid)
    await net.delete_network(ctx(admin=True), network.uuid)
    assert await db_network.list_networks(db) == []
    assert await _fixed_rows(db, network.id) == []
    with pytest.raises(db_network.NetworkNotFound):
        await net.delete_network(ctx(admin=True), network.uuid)


async def test_no_network_for_instance(db: Database, net: NetworkAPI,
                                       make_instance: InstanceFactory) -> None:
    (network,) = await db_network.list_networks(db)
    await net.delete_network(ctx(admin=True), network.uuid)
    instance = await make_instance()
    with pytest.raises(network_api.NoNetworkForInstance):
        await net.allocate_for_instance(instance.uuid, "p1", "host-1", "vm1")


# --- vlan mode -----------------------------------------------------------------


async def test_vlan_projects_get_their_own_networks(
        db: Database, make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(network_manager="vlan", fixed_range="10.0.0.0/16",
                         network_size=256, vlan_interface="eth1")
    assert await db_network.list_networks(db) == []  # created on first use
    a1, a2 = await make_instance("pa"), await make_instance("pa")
    b1 = await make_instance("pb")
    (va1,) = await net.allocate_for_instance(a1.uuid, "pa", "host-1", "a1")
    (va2,) = await net.allocate_for_instance(a2.uuid, "pa", "host-1", "a2")
    (vb1,) = await net.allocate_for_instance(b1.uuid, "pb", "host-1", "b1")
    assert (va1.cidr, va1.vlan, va1.bridge, va1.fixed_ip) == ("10.0.0.0/24", 100, "nvbr100",
                                                              "10.0.0.2")
    assert (va2.network_id, va2.fixed_ip) == (va1.network_id, "10.0.0.3")
    assert (vb1.cidr, vb1.vlan, vb1.bridge, vb1.fixed_ip) == ("10.0.1.0/24", 101, "nvbr101",
                                                              "10.0.1.2")
    networks = await db_network.list_networks(db)
    assert {(n.project_id, n.bridge_interface) for n in networks} == {("pa", "eth1"),
                                                                      ("pb", "eth1")}
    with pytest.raises(network_api.NetworkNotFoundForRequest):
        await net.check_requested_networks("pb", [(va1.network_id, None)])


async def test_vlan_concurrent_first_boots_share_one_network(
        db: Database, make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(network_manager="vlan", fixed_range="10.0.0.0/16")
    instances = [await make_instance("pc") for _ in range(10)]
    results = await asyncio.gather(*(
        net.allocate_for_instance(i.uuid, "pc", "host-1", "vm") for i in instances))
    assert len({vifs[0].network_id for vifs in results}) == 1
    assert len(await db_network.list_networks(db)) == 1


async def test_vlan_claims_an_unassigned_network_first(
        db: Database, make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(network_manager="vlan", fixed_range="10.0.0.0/16")
    made = await net.create_network(ctx(admin=True), label="spare", cidr="172.30.0.0/24",
                                    vlan_start=300)
    assert (made.vlan, made.bridge, made.project_id) == (300, "nvbr300", None)
    instance = await make_instance("pd")
    (vif,) = await net.allocate_for_instance(instance.uuid, "pd", "host-1", "vm")
    assert vif.network_id == made.uuid


async def test_vlan_add_network_to_project_and_modes(
        db: Database, make_net: NetFactory) -> None:
    vlan = await make_net(network_manager="vlan")
    flat = NetworkAPI(db, make_conf(network_manager="flat_dhcp"))
    with pytest.raises(network_api.NetworkModeUnsupported):
        await flat.add_network_to_project(ctx(admin=True), "p1", None)
    with pytest.raises(network_api.NoUnassignedNetwork):
        await vlan.add_network_to_project(ctx(admin=True), "p1", None)
    spare = await vlan.create_network(ctx(admin=True), label="spare", cidr="172.31.0.0/24")
    claimed = await vlan.add_network_to_project(ctx(admin=True), "p1", None)
    assert claimed.uuid == spare.uuid and claimed.project_id == "p1"
    with pytest.raises(db_network.DuplicateVlan):
        await vlan.create_network(ctx(admin=True), label="dup", cidr="172.31.9.0/24",
                                  vlan=spare.vlan)
    with pytest.raises(network_api.InvalidVlan):
        await vlan.create_network(ctx(admin=True), label="bad", cidr="172.31.8.0/24",
                                  vlan=4095)


async def test_mode_must_be_known(make_net: NetFactory) -> None:
    with pytest.raises(exceptions.Invalid):
        await make_net(network_manager="neutron")


async def test_release_refreshes_the_project_hosts(
        net: NetworkAPI, make_instance: InstanceFactory, refreshes: Refreshes) -> None:
    gone = await make_instance(host="h1")
    await make_instance(host="h2")
    await make_instance(project_id="p2", host="h3")
    await net.allocate_for_instance(gone.uuid, "p1", "h1", "gone")
    refreshes.calls.clear()
    await net.deallocate_for_instance(gone.uuid)
    assert refreshes.calls == [{"h1", "h2"}]
    refreshes.calls.clear()
    assert await net.deallocate_for_instance(gone.uuid) == []  # nothing left: no refresh
    assert refreshes.calls == []
