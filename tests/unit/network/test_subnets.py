"""Subnets (network/subnets.py): Neutron's semantics and errors, the scope of each role,
and the mirror into the network's L3 columns and address rows that IPAM, host
state and DHCP read."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.db import network as db_network
from novalet.db.engine import Database
from novalet.db.models import FixedIp, Network, Subnet
from novalet.network import subnets as sn
from novalet.network.api import NetworkAPI
from novalet.network.state import host_state
from novalet.network.subnets import SubnetChanges, SubnetService, SubnetSpec
from tests.unit.network.ipam_fixtures import (InstanceFactory, NetFactory, Refreshes, db,
                                              make_instance, make_net, net, refreshes)

__all__ = ["db", "make_instance", "make_net", "net", "refreshes"]


def member(project_id: str = "p1") -> RequestContext:
    return RequestContext(user_id="u1", project_id=project_id, roles=["member"])


def reader(project_id: str = "p1") -> RequestContext:
    return RequestContext(user_id="u2", project_id=project_id, roles=["reader"])


ADMIN = RequestContext(user_id="a", project_id="admin", roles=["admin"])


@pytest.fixture
def subnets(db: Database, net: NetworkAPI, refreshes: Refreshes) -> SubnetService:
    return SubnetService(db, net.conf, refresh_hosts=refreshes)


async def bare_network(db: Database, project_id: str | None = "p1", shared: bool = False,
                       label: str = "bare") -> Network:
    """A network without a subnet (what the network API's POST /networks makes)."""
    number = uuid.uuid4().int % 1000
    network = Network(uuid=str(uuid.uuid4()), label=label, bridge=f"nvbr{number}",
                      project_id=project_id, shared=shared, multi_host=False)
    async with db.transaction() as s:
        s.add(network)
    return network


async def rows_of(db: Database, network_id: int) -> dict[str, FixedIp]:
    async with db.transaction() as s:
        return {r.address: r for r in (await s.execute(select(FixedIp).where(
            FixedIp.network_id == network_id))).scalars()}


async def subnet_count(db: Database, network_id: int) -> int:
    async with db.transaction() as s:
        return int((await s.execute(select(func.count(Subnet.id)).where(
            Subnet.network_id == network_id))).scalar_one())


def spec(network: Network, cidr: str = "10.1.0.0/24", **fields: Any) -> SubnetSpec:
    return SubnetSpec(network_id=network.uuid, cidr=cidr, **fields)


# --- create and the mirror --------------------------------------------------------

async def test_create_with_neutron_defaults_mirrors_into_the_network(
        db: Database, subnets: SubnetService, refreshes: Refreshes) -> None:
    network = await bare_network(db)
    info = await subnets.create_subnet(member(), spec(network))
    assert (info.network_id, info.cidr, info.gateway_ip, info.ip_version, info.name) == (
        network.uuid, "10.1.0.0/24", "10.1.0.1", 4, "")
    assert info.allocation_pools == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert (info.project_id, info.enable_dhcp, info.dns_nameservers, info.host_routes) == (
        "p1", True, [], [])
    mirrored = await db_network.get_network(db, network.uuid)
    assert (mirrored.cidr, mirrored.gateway, mirrored.netmask, mirrored.broadcast,
            mirrored.dhcp_start, mirrored.enable_dhcp) == (
        "10.1.0.0/24", "10.1.0.1", "255.255.255.0", "10.1.0.255", "10.1.0.2", True)
    rows = await rows_of(db, network.id)
    assert len(rows) == 256
    assert sorted(a for a, r in rows.items() if r.reserved) == [
        "10.1.0.0", "10.1.0.1", "10.1.0.255"]
    assert refreshes.calls[-1] == {"*"}
    assert await subnets.get_subnet(member(), info.id) == info
    # with the default (unassigned) network's and the external network "public"'s
    listed = await subnets.list_subnets(member())
    assert info in listed and len(listed) == 3


async def test_pools_dns_and_dhcp_reach_ipam_and_hosts(
        db: Database, net: NetworkAPI, subnets: SubnetService,
        make_instance: InstanceFactory) -> None:
    network = await bare_network(db)
    pools = [{"start": "10.1.0.100", "end": "10.1.0.101"}]
    info = await subnets.create_subnet(member(), spec(
        network, gateway_ip="10.1.0.254", allocation_pools=pools, enable_dhcp=False,
        dns_nameservers=["192.0.2.53", "192.0.2.54"],
        host_routes=[{"destination": "192.168.0.0/16", "nexthop": "10.1.0.9"}]))
    assert info.host_routes == [{"destination": "192.168.0.0/16", "nexthop": "10.1.0.9"}]
    rows = await rows_of(db, network.id)
    assert sorted(a for a, r in rows.items() if not r.reserved) == ["10.1.0.100", "10.1.0.101"]
    instance = await make_instance(host="h1")
    (vif,) = await net.allocate_for_instance(instance.uuid, "p1", "h1", "vm1",
                                             requested_networks=[(network.uuid, None)])
    assert vif.fixed_ip in ("10.1.0.100", "10.1.0.101")
    assert (vif.gateway, vif.dns, vif.dhcp) == ("10.1.0.254", ["192.0.2.53", "192.0.2.54"],
                                                False)  # no DHCP: static network_data.json
    served = {n.uuid: n for n in (await host_state(db, net.conf, "h1")).networks}
    assert (served[network.uuid].dhcp, served[network.uuid].dhcp_start) == (False, "10.1.0.100")
    await subnets.update_subnet(member(), info.id, SubnetChanges(enable_dhcp=True))
    served = {n.uuid: n for n in (await host_state(db, net.conf, "h1")).networks}
    assert served[network.uuid].dhcp


# --- refusals leave nothing half-made ----------------------------------------------

REFUSALS: list[tuple[dict[str, Any], type[exceptions.NovaletError], int, str]] = [
    ({"ip_version": 6, "cidr": "2001:db8::/64"}, sn.InvalidInput, 400, "IPv6"),
    ({"ip_version": 5}, sn.InvalidInput, 400, "ip_version 5"),
    ({"subnetpool_id": "pool"}, sn.InvalidInput, 400, "subnet pools"),
    ({"prefixlen": 24, "cidr": None}, sn.InvalidInput, 400, "subnet pools"),
    ({"cidr": None}, sn.BadRequest, 400, "cidr must be specified"),
    ({"cidr": "10.1.0.1/24"}, sn.InvalidInput, 400, "'10.1.0.0/24' is recommended"),
    ({"cidr": "nonsense"}, sn.InvalidInput, 400, "not a valid IP subnet"),
    ({"cidr": "2001:db8::/64"}, sn.InvalidInput, 400, "does not match ip_version 4"),
    ({"cidr": "10.1.0.0/16"}, sn.InvalidInput, 400, "to 1024 (a /22)"),
    ({"cidr": "10.1.0.0/31"}, sn.InvalidInput, 400, "from 4 (a /30)"),
    ({"gateway_ip": None}, sn.InvalidInput, 400, "without a gateway"),
    ({"gateway_ip": "10.2.0.1"}, sn.InvalidInput, 400, "Gateway is not valid on subnet"),
    ({"gateway_ip": "10.1.0.255"}, sn.InvalidInput, 400, "Gateway is not valid on subnet"),
    ({"allocation_pools": [{"start": "10.1.0.9", "end": "10.1.0.5"}]},
     sn.InvalidAllocationPool, 400, "10.1.0.9-10.1.0.5"),
    ({"allocation_pools": [{"start": "10.1.0.9"}]}, sn.InvalidAllocationPool, 400, "not valid"),
    ({"allocation_pools": [{"start": "10.1.0.9", "end": "10.1.1.5"}]},
     sn.OutOfBoundsAllocationPool, 400, "spans beyond"),
    ({"allocation_pools": [{"start": "10.1.0.2", "end": "10.1.0.9"},
                           {"start": "10.1.0.9", "end": "10.1.0.20"}]},
     sn.OverlappingAllocationPools, 409, "overlapping"),
    ({"allocation_pools": [{"start": "10.1.0.1", "end": "10.1.0.9"}]},
     sn.GatewayConflictWithAllocationPools, 409, "10.1.0.1"),
    ({"dns_nameservers": ["192.0.2.1", "192.0.2.2", "192.0.2.3"]},
     sn.DNSNameServersExhausted, 400, "limit 2"),
    ({"dns_nameservers": ["192.0.2.1", "192.0.2.1"]}, sn.InvalidInput, 400, "Duplicate"),
    ({"dns_nameservers": ["nope"]}, sn.InvalidInput, 400, "not a valid IP address"),
    ({"host_routes": [{"destination": "10.9.0.1/24", "nexthop": "10.1.0.3"}]},
     sn.InvalidInput, 400, "not a valid CIDR"),
    ({"host_routes": [{"destination": "10.9.0.0/24"}]}, sn.InvalidInput, 400, "nexthop"),
    ({"name": "x" * 256}, sn.InvalidInput, 400, "at most 255"),
    ({"cidr": "10.0.0.128/25"}, sn.InvalidInput, 400, "overlaps with another subnet"),
]


@pytest.mark.parametrize("fields,error,code,text", REFUSALS)
async def test_refused_creates_change_nothing(
        db: Database, subnets: SubnetService, refreshes: Refreshes, fields: dict[str, Any],
        error: type[exceptions.NovaletError], code: int, text: str) -> None:
    network = await bare_network(db)
    calls = len(refreshes.calls)
    with pytest.raises(error) as raised:
        await subnets.create_subnet(member(), SubnetSpec(**{
            "network_id": network.uuid, "cidr": "10.1.0.0/24", **fields}))
    assert raised.value.code == code and text in raised.value.message, raised.value.message
    assert await subnet_count(db, network.id) == 0
    assert await rows_of(db, network.id) == {}
    assert (await db_network.get_network(db, network.uuid)).cidr is None
    assert len(refreshes.calls) == calls


async def test_one_subnet_per_network(db: Database, subnets: SubnetService) -> None:
    network = await bare_network(db)
    first = await subnets.create_subnet(member(), spec(network))
    with pytest.raises(sn.InvalidInput, match="one IPv4 subnet per network for now"):
        await subnets.create_subnet(member(), spec(network, "10.2.0.0/24"))
    assert [s.id for s in await subnets.list_subnets(ADMIN) if s.network_id == network.uuid
            ] == [first.id]
    assert len(await rows_of(db, network.id)) == 256


async def test_concurrent_first_subnets_one_wins(db: Database, subnets: SubnetService) -> None:
    network = await bare_network(db)
    results = await asyncio.gather(
        *(subnets.create_subnet(member(), spec(network, f"10.{n}.0.0/24")) for n in (1, 2, 3)),
        return_exceptions=True)
    won = [r for r in results if isinstance(r, sn.SubnetInfo)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 2, results
    assert all(isinstance(e, sn.InvalidInput) for e in lost), lost
    prefix = won[0].cidr.split(".0.0/")[0] + "."
    assert all(a.startswith(prefix) for a in await rows_of(db, network.id))
    assert await subnet_count(db, network.id) == 1


# --- scope -------------------------------------------------------------------------

async def test_scope_of_members_readers_and_admins(db: Database,
                                                   subnets: SubnetService) -> None:
    private = await bare_network(db, "p1")
    shared = await bare_network(db, "p1", shared=True)
    with pytest.raises(sn.NetworkNotFound):
        await subnets.create_subnet(member("p2"), spec(private))
    with pytest.raises(sn.PolicyNotAuthorized) as forbidden:
        await subnets.create_subnet(member("p2"), spec(shared))
    assert forbidden.value.code == 403
    with pytest.raises(sn.PolicyNotAuthorized):
        await subnets.create_subnet(reader("p1"), spec(private))
    with pytest.raises(sn.BadRequest, match="requires admin"):
        await subnets.create_subnet(member("p1"), spec(private, project_id="p2"))
    mine = await subnets.create_subnet(member("p1"), spec(private))
    theirs = await subnets.create_subnet(ADMIN, spec(shared, "10.2.0.0/24", project_id="p1"))
    assert theirs.project_id == "p1"
    seen = {s.id for s in await subnets.list_subnets(member("p2"))}
    assert theirs.id in seen and mine.id not in seen
    with pytest.raises(sn.SubnetNotFound):
        await subnets.get_subnet(member("p2"), mine.id)
    for call in (subnets.update_subnet(member("p2"), theirs.id, SubnetChanges(name="x")),
                 subnets.delete_subnet(member("p2"), theirs.id),
                 subnets.update_subnet(reader("p1"), mine.id, SubnetChanges(name="x")),
                 subnets.delete_subnet(reader("p1"), mine.id)):
        with pytest.raises(sn.PolicyNotAuthorized):
            await call
    with pytest.raises(sn.SubnetNotFound):
        await subnets.delete_subnet(member("p2"), mine.id)
    assert (await subnets.get_subnet(reader("p1"), mine.id)).name == ""
    # with the default network's and the external network "public"'s
    assert len(await subnets.list_subnets(ADMIN)) == 4


# --- update ------------------------------------------------------------------------

async def test_update_mirrors_and_flips_reservations(db: Database, net: NetworkAPI,
                                                     subnets: SubnetService,
                                                     make_instance: InstanceFactory) -> None:
    network = await bare_network(db)
    info = await subnets.create_subnet(member(), spec(network, "10.1.0.0/28"))
    instance = await make_instance(host="h1")
    (vif,) = await net.allocate_for_instance(instance.uuid, "p1", "h1", "vm1",
                                             requested_networks=[(network.uuid, None)])
    with pytest.raises(sn.GatewayConflictWithAllocationPools):
        await subnets.update_subnet(member(), info.id, SubnetChanges(gateway_ip="10.1.0.14"))
    changes = SubnetChanges(name="web", description="d", dns_nameservers=["192.0.2.9"],
                            allocation_pools=[{"start": "10.1.0.8", "end": "10.1.0.13"}],
                            gateway_ip="10.1.0.14",
                            host_routes=[{"destination": "0.0.0.0/0", "nexthop": "10.1.0.14"}])
    updated = await subnets.update_subnet(member(), info.id, changes)
    assert (updated.name, updated.description, updated.gateway_ip, updated.dns_nameservers) == (
        "web", "d", "10.1.0.14", ["192.0.2.9"])
    mirrored = await db_network.get_network(db, network.uuid)
    assert (mirrored.gateway, mirrored.dns1, mirrored.dns2, mirrored.dhcp_start) == (
        "10.1.0.14", "192.0.2.9", None, "10.1.0.8")
    rows = await rows_of(db, network.id)
    free = sorted((a for a, r in rows.items() if not r.reserved),
                  key=lambda a: int(a.rsplit(".", 1)[1]))
    # the server's address left the pools: it keeps it; no one else gets it afterwards
    assert rows[vif.fixed_ip].instance_uuid == instance.uuid and rows[vif.fixed_ip].reserved
    assert free == [f"10.1.0.{n}" for n in range(8, 14)]
    with pytest.raises(sn.GatewayIpInUse):
        await subnets.update_subnet(member(), info.id, SubnetChanges(
            gateway_ip=vif.fixed_ip))
    with pytest.raises(sn.InvalidInput, match="without a gateway"):
        await subnets.update_subnet(member(), info.id, SubnetChanges(gateway_ip=None))
    assert (await subnets.get_subnet(member(), info.id)).gateway_ip == "10.1.0.14"


# --- delete ------------------------------------------------------------------------

async def test_delete_refused_while_in_use_then_unserved(
        db: Database, net: NetworkAPI, subnets: SubnetService,
        make_instance: InstanceFactory) -> None:
    network = await bare_network(db)
    info = await subnets.create_subnet(member(), spec(network, "10.1.0.0/28"))
    instance = await make_instance(host="h1")
    await net.allocate_for_instance(instance.uuid, "p1", "h1", "vm1",
                                    requested_networks=[(network.uuid, None)])
    with pytest.raises(sn.SubnetInUse) as in_use:
        await subnets.delete_subnet(member(), info.id)
    assert in_use.value.code == 409
    assert len(await rows_of(db, network.id)) == 16
    await net.deallocate_for_instance(instance.uuid)
    await subnets.delete_subnet(member(), info.id)
    with pytest.raises(sn.SubnetNotFound):
        await subnets.get_subnet(member(), info.id)
    bare = await db_network.get_network(db, network.uuid)
    assert (bare.cidr, bare.gateway, bare.dhcp_start, bare.dns1) == (None, None, None, None)
    assert await rows_of(db, network.id) == {}
    assert network.uuid not in {n.uuid for n in (await host_state(db, net.conf, "h1")).networks}
    again = await subnets.create_subnet(member(), spec(network, "10.3.0.0/29"))
    assert again.cidr == "10.3.0.0/29"


# --- the compute proxy's networks have their subnet --------------------------------

PUBLIC = "172.24.4.0/24"  # the configured floating IP pool's external network


def _guest(found: list[sn.SubnetInfo]) -> list[sn.SubnetInfo]:
    return [s for s in found if s.cidr != PUBLIC]


async def test_os_networks_create_and_delete_keep_the_subnet(
        db: Database, net: NetworkAPI, subnets: SubnetService) -> None:
    (default,) = _guest(await subnets.list_subnets(ADMIN))  # ensure_defaults' network
    assert (default.cidr, default.gateway_ip) == ("10.0.0.0/24", "10.0.0.1")
    assert default.allocation_pools == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    made = await net.create_network(ADMIN, label="n2", cidr="10.5.0.0/24",
                                    allowed_start="10.5.0.10", allowed_end="10.5.0.20",
                                    dns1="192.0.2.1")
    (subnet,) = [s for s in await subnets.list_subnets(ADMIN) if s.network_id == made.uuid]
    assert subnet.allocation_pools == [{"start": "10.5.0.10", "end": "10.5.0.20"}]
    assert (subnet.dns_nameservers, subnet.project_id) == (["192.0.2.1"], None)
    await net.delete_network(ADMIN, made.uuid)
    assert [s.network_id for s in _guest(await subnets.list_subnets(ADMIN))] == [
        default.network_id]


async def test_vlan_project_networks_get_their_subnet(
        make_net: NetFactory, make_instance: InstanceFactory, refreshes: Refreshes) -> None:
    net = await make_net(network_manager="vlan", fixed_range="10.8.0.0/16",
                         network_size=64)
    instance = await make_instance(project_id="p9")
    (vif,) = await net.allocate_for_instance(instance.uuid, "p9", "host-1", "vm")
    service = SubnetService(net.db, net.conf, refresh_hosts=refreshes)
    (subnet,) = _guest(await service.list_subnets(member("p9")))
    assert (subnet.network_id, subnet.cidr, subnet.project_id) == (
        vif.network_id, vif.cidr, "p9")


async def test_flat_mode_networks_subnet_says_no_dhcp(make_net: NetFactory,
                                                      refreshes: Refreshes) -> None:
    """flat mode serves no DHCP: its networks' subnets say so."""
    net = await make_net(network_manager="flat")
    (subnet,) = _guest(await SubnetService(net.db, net.conf, refreshes).list_subnets(ADMIN))
    assert subnet.enable_dhcp is False


# --- request bodies (for the HTTP face) ---------------------------------------------

def test_bodies_become_typed_requests() -> None:
    made = sn.spec_from_body({"network_id": "n", "cidr": "10.1.0.0/24", "ip_version": "4",
                              "tenant_id": "p1", "enable_dhcp": "false",
                              "ipv6_ra_mode": None, "allocation_pools": None})
    assert (made.ip_version, made.project_id, made.enable_dhcp, made.gateway_ip) == (
        4, "p1", False, sn.UNSET)
    assert sn.spec_from_body({"network_id": "n", "gateway_ip": None}).gateway_ip is None
    changes = sn.changes_from_body({"name": "x", "dns_nameservers": []})
    assert (changes.name, changes.dns_nameservers, changes.host_routes) == (
        "x", [], sn.UNSET)


@pytest.mark.parametrize("body,error,text", [
    ({"cidr": "10.1.0.0/24"}, sn.BadRequest, "network_id must be specified"),
    ({"network_id": "n", "colour": "red"}, sn.BadRequest, "Unrecognized attribute(s) 'colour'"),
    ({"network_id": "n", "ip_version": True}, sn.InvalidInput, "not a valid int"),
    ({"network_id": "n", "name": 5}, sn.InvalidInput, "not a valid str"),
    ({"network_id": "n", "enable_dhcp": "maybe"}, sn.InvalidInput, "not a valid bool"),
    ({"network_id": "n", "dns_nameservers": "8.8.8.8"}, sn.InvalidInput, "not a valid list"),
    ({"network_id": "n", "dns_nameservers": [8]}, sn.InvalidInput, "not a valid IP"),
    ({"network_id": "n", "ipv6_address_mode": "slaac"}, sn.InvalidInput, "not supported"),
    ({"network_id": "n", "tenant_id": "a", "project_id": "b"}, sn.InvalidInput, "match"),
])
def test_bad_create_bodies(body: dict[str, Any], error: type[exceptions.NovaletError],
                           text: str) -> None:
    with pytest.raises(error) as raised:
        sn.spec_from_body(body)
    assert raised.value.code == 400 and text in raised.value.message, raised.value.message


@pytest.mark.parametrize("body,text", [
    ({"cidr": "10.2.0.0/24"}, "Cannot update read-only attribute cidr"),
    ({"network_id": "x"}, "Cannot update read-only attribute network_id"),
    ({"colour": "red"}, "Unrecognized attribute(s) 'colour'"),
    ({"gateway_ip": 5}, "not a valid str"),
])
def test_bad_update_bodies(body: dict[str, Any], text: str) -> None:
    with pytest.raises(exceptions.Invalid) as raised:
        sn.changes_from_body(body)
    assert text in raised.value.message, raised.value.message


async def test_kinds_are_checked_in_the_domain_too(db: Database,
                                                   subnets: SubnetService) -> None:
    network = await bare_network(db)
    for bad in ({"allocation_pools": [{"start": 5, "end": 9}]},
                {"host_routes": [{"destination": 10, "nexthop": "10.1.0.3"}]},
                {"host_routes": [{"destination": "10.9.0.0/24", "nexthop": 3}]}):
        with pytest.raises(exceptions.Invalid):
            await subnets.create_subnet(member(), spec(network, **bad))
    assert await subnet_count(db, network.id) == 0
