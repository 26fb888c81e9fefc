"""Reproducers of the first review of the subnets domain: ranges no subnet may
have, bounded work per request, null list fields, and the mirror subnet following
its network's project when a VLAN network is claimed."""

from __future__ import annotations

import time

import pytest

from novalet import exceptions
from novalet.db.engine import Database
from novalet.network import subnets as sn
from novalet.network.api import NetworkAPI
from novalet.network.subnets import SubnetService
from tests.unit.network.ipam_fixtures import (InstanceFactory, NetFactory, Refreshes, db,
                                              make_instance, make_net, net, refreshes)
from tests.unit.network.test_subnets import ADMIN, bare_network, member, spec

__all__ = ["db", "make_instance", "make_net", "net", "refreshes"]


@pytest.fixture
def subnets(db: Database, net: NetworkAPI, refreshes: Refreshes) -> SubnetService:
    return SubnetService(db, net.conf, refresh_hosts=refreshes)


# --- finding 1: ranges --------------------------------------------------------------

@pytest.mark.parametrize("cidr", ["127.0.0.0/30", "169.254.169.252/30", "224.0.0.0/30",
                                  "0.0.0.0/30", "255.255.255.252/30", "172.24.4.0/28"])
async def test_nobody_gets_a_special_range_or_a_floating_pool(
        db: Database, subnets: SubnetService, cidr: str) -> None:
    for ctx, project in ((member(), "p1"), (ADMIN, "admin")):
        network = await bare_network(db, project_id=project)
        with pytest.raises(sn.InvalidInput, match="overlaps"):
            await subnets.create_subnet(ctx, spec(network, cidr))


async def test_members_stay_inside_the_tenant_ranges(db: Database,
                                                     subnets: SubnetService) -> None:
    network = await bare_network(db)
    with pytest.raises(sn.InvalidInput, match="outside the ranges"):
        await subnets.create_subnet(member(), spec(network, "192.168.50.0/24"))
    made = await subnets.create_subnet(member(), spec(network, "10.77.0.0/24"))
    assert made.cidr == "10.77.0.0/24"
    other = await bare_network(db, project_id="admin")
    assert (await subnets.create_subnet(ADMIN, spec(other, "192.168.50.0/24"))).cidr == \
        "192.168.50.0/24"


async def test_tenant_ranges_are_configurable(make_net: NetFactory, db: Database,
                                              refreshes: Refreshes) -> None:
    net = await make_net(tenant_subnet_ranges="192.168.0.0/16")
    service = SubnetService(db, net.conf, refresh_hosts=refreshes)
    network = await bare_network(db)
    with pytest.raises(sn.InvalidInput, match="192.168.0.0/16, 10.0.0.0/24"):
        await service.create_subnet(member(), spec(network, "10.77.0.0/24"))
    assert (await service.create_subnet(member(), spec(network, "192.168.3.0/24"))).cidr == \
        "192.168.3.0/24"


# --- finding 10: bounded work -------------------------------------------------------

async def test_many_pools_are_refused_before_any_work(db: Database,
                                                      subnets: SubnetService) -> None:
    network = await bare_network(db)
    pools = [{"start": f"10.1.{i // 256}.{i % 256}", "end": f"10.1.{i // 256}.{i % 256}"}
             for i in range(2, 1022)]
    started = time.monotonic()
    with pytest.raises(sn.InvalidInput, match="at most 32"):
        await subnets.create_subnet(member(), spec(network, "10.1.0.0/22",
                                                   allocation_pools=pools))
    assert time.monotonic() - started < 0.5


async def test_32_pools_over_a_22_are_quick(db: Database, subnets: SubnetService) -> None:
    network = await bare_network(db)
    pools = [{"start": f"10.1.{i // 8}.{(i % 8) * 32 + 2}",
              "end": f"10.1.{i // 8}.{(i % 8) * 32 + 20}"} for i in range(32)]
    started = time.monotonic()
    made = await subnets.create_subnet(member(), spec(network, "10.1.0.0/22",
                                                     allocation_pools=pools))
    assert len(made.allocation_pools) == 32
    assert time.monotonic() - started < 2.0


def test_huge_dns_and_route_lists_are_counted_first() -> None:
    started = time.monotonic()
    with pytest.raises(sn.DNSNameServersExhausted):
        sn._check_dns([f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(11000)],
                      "s")
    with pytest.raises(sn.HostRoutesExhausted):
        sn._check_routes([{"destination": "10.0.0.0/8", "nexthop": "10.0.0.1"}] * 11000, "s")
    assert time.monotonic() - started < 0.2


# --- finding 13: null list fields ---------------------------------------------------

def test_null_dns_and_host_routes_are_empty_lists() -> None:
    made = sn.spec_from_body({"network_id": "n", "cidr": "10.1.0.0/24",
                              "dns_nameservers": None, "host_routes": None})
    assert (list(made.dns_nameservers), list(made.host_routes)) == ([], [])
    changes = sn.changes_from_body({"dns_nameservers": None, "host_routes": None})
    assert (changes.dns_nameservers, changes.host_routes) == ([], [])


# --- finding 15: the mirror subnet follows a claim ----------------------------------

async def test_a_claimed_vlan_network_subnet_belongs_to_the_project(
        make_net: NetFactory, make_instance: InstanceFactory, refreshes: Refreshes) -> None:
    net = await make_net(network_manager="vlan", fixed_range="10.8.0.0/16", network_size=64)
    spare = await net.create_network(ADMIN, label="spare", cidr="10.8.1.0/26")
    instance = await make_instance(project_id="p9")
    (vif,) = await net.allocate_for_instance(instance.uuid, "p9", "host-1", "vm")
    assert vif.network_id == spare.uuid  # the unassigned network was claimed
    service = SubnetService(net.db, net.conf, refresh_hosts=refreshes)
    (subnet,) = [s for s in await service.list_subnets(member("p9"))
                 if s.network_id == spare.uuid]
    assert subnet.project_id == "p9"


async def test_associating_moves_the_subnet_too(make_net: NetFactory,
                                                refreshes: Refreshes) -> None:
    net = await make_net(network_manager="vlan", fixed_range="10.8.0.0/16", network_size=64)
    spare = await net.create_network(ADMIN, label="spare", cidr="10.8.1.0/26")
    await net.add_network_to_project(ADMIN, "p7", spare.uuid)
    service = SubnetService(net.db, net.conf, refresh_hosts=refreshes)
    (subnet,) = [s for s in await service.list_subnets(ADMIN) if s.network_id == spare.uuid]
    assert subnet.project_id == "p7"
    with pytest.raises(exceptions.NotFound):
        await service.get_subnet(member("p8"), subnet.id)


async def test_nobody_gets_a_range_over_the_services_addresses(
        make_net: NetFactory, db: Database, refreshes: Refreshes) -> None:
    net = await make_net()
    net.conf.set("DEFAULT", "transport_url",
                 "rabbit://u:p@rabbit.example:5672,u:p@10.66.0.5:5672/vhost")
    net.conf.set("database", "connection", "postgresql://u:p@10.66.1.7:5432/nova")
    service = SubnetService(db, net.conf, refresh_hosts=refreshes)
    for cidr in ("10.66.0.4/30", "10.66.1.0/24"):
        network = await bare_network(db, project_id="admin")
        with pytest.raises(sn.InvalidInput, match="services use"):
            await service.create_subnet(ADMIN, spec(network, cidr))
    network = await bare_network(db, project_id="admin")
    assert (await service.create_subnet(ADMIN, spec(network, "10.66.2.0/24"))).cidr == \
        "10.66.2.0/24"
