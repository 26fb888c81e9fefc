"""What a host is told to enforce, and what server views read, from the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from novalet.common.context import RequestContext
from novalet.db import instances, migrations_records
from novalet.db.engine import Database
from novalet.db.network import HostAddressInUse
from novalet.network.api import NetworkAPI
from novalet.network.linux.firewall import render_ruleset
from novalet.network.model import FloatingNat, SecurityRule
from novalet.network.state import host_state
from tests.unit.network.ipam_fixtures import (InstanceFactory, NetFactory, ctx, db, make_instance,
                                              make_net, net, refreshes)

__all__ = ["db", "make_instance", "make_net", "net", "refreshes"]


async def test_state_of_a_host(net: NetworkAPI, make_instance: InstanceFactory) -> None:
    one = await make_instance(host="h1", name="one")
    two = await make_instance(host="h1", name="two")
    far = await make_instance(host="h2", name="far")
    idle = await make_instance(host="h1", name="idle")  # no NIC (e.g. still building)
    (v1,) = await net.allocate_for_instance(one.uuid, "p1", "h1", "one")
    (v2,) = await net.allocate_for_instance(two.uuid, "p1", "h1", "two")
    (vf,) = await net.allocate_for_instance(far.uuid, "p1", "h2", "far")
    web = await net.create_security_group(ctx(), "web", "d")
    await net.create_security_group_rule(ctx(), web.id, "TCP", 22, 22, "10.1.0.0/16")
    await net.add_security_group(ctx(), two, "web")
    floating = (await net.allocate_floating_ip(ctx())).floating
    await net.associate_floating_ip(ctx(), one, floating.address)

    state = await host_state(net.db, net.conf, "h1")
    assert state.host == "h1" and state.public_interface is None
    (network,) = state.networks
    assert (network.cidr, network.bridge, network.gateway, network.dhcp_start, network.dhcp,
            network.dns, network.vlan) == ("10.0.0.0/24", "nvbr0", "10.0.0.1", "10.0.0.2",
                                           True, ["10.0.0.1"], None)
    # single network host: dnsmasq knows every guest of the network
    assert network.hosts == {v1.address: (v1.fixed_ip, "one"), v2.address: (v2.fixed_ip, "two"),
                             vf.address: (vf.fixed_ip, "far")}
    assert [i.instance_uuid for i in state.instances] == [one.uuid, two.uuid]
    assert idle.uuid not in [i.instance_uuid for i in state.instances]
    by_uuid = {i.instance_uuid: i for i in state.instances}
    members = sorted([v1.fixed_ip, v2.fixed_ip, vf.fixed_ip])
    default_rule = SecurityRule(None, None, None, remote_ips=members)
    assert [v.fixed_ip for v in by_uuid[one.uuid].vifs] == [v1.fixed_ip]
    assert by_uuid[one.uuid].vifs[0].floating_ips == [floating.address]
    assert _sorted(by_uuid[one.uuid].rules) == [default_rule]
    assert _sorted(by_uuid[two.uuid].rules) == [
        default_rule, SecurityRule("tcp", 22, 22, cidr="10.1.0.0/16")]
    # Neutron's rules besides: egress anywhere (every group), IPv6 from the default
    # group's members; egress is filtered by them
    assert state.egress_filtered
    others = {(r.direction, r.ethertype, r.cidr, tuple(sorted(r.remote_ips)))
              for r in by_uuid[one.uuid].rules} - {("ingress", "IPv4", None, tuple(members))}
    assert others == {("egress", "IPv4", "0.0.0.0/0", ()), ("egress", "IPv6", "::/0", ()),
                      ("ingress", "IPv6", None, tuple(members))}
    assert state.floating == [FloatingNat(floating.address, v1.fixed_ip, None)]
    assert state.metadata_port == 8775


def _sorted(rules: list[SecurityRule]) -> list[SecurityRule]:
    """The IPv4 ingress rules, sorted."""
    rules = [r for r in rules if (r.direction, r.ethertype) == ("ingress", "IPv4")]
    for rule in rules:
        rule.remote_ips.sort()
    return sorted(rules, key=lambda r: (r.protocol or "", r.cidr or ""))


async def test_multi_host_state_is_local(make_net: NetFactory,
                                         make_instance: InstanceFactory) -> None:
    net = await make_net(multi_host=True, public_interface="eth0")
    await net.create_network(ctx(admin=True), label="other", cidr="10.5.0.0/24")
    one = await make_instance(host="h1", name="one")
    far = await make_instance(host="h2", name="far")
    (v1,) = await net.allocate_for_instance(one.uuid, "p1", "h1", "one")
    await net.allocate_for_instance(far.uuid, "p1", "h2", "far")
    floating = (await net.allocate_floating_ip(ctx())).floating
    await net.associate_floating_ip(ctx(), far, floating.address)
    state = await host_state(net.db, net.conf, "h1")
    (network,) = state.networks  # "other" has no guest here
    assert network.hosts == {v1.address: (v1.fixed_ip, "one")}
    assert state.floating == []
    far_state = await host_state(net.db, net.conf, "h2")
    assert [(f.floating_ip, f.interface) for f in far_state.floating] == [
        (floating.address, "eth0")]
    assert far_state.public_interface == "eth0"
    assert (await host_state(net.db, net.conf, "nowhere")).networks == []


async def test_each_multi_host_host_serves_from_an_address_of_its_own(
        make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(multi_host=True)
    one = await make_instance(host="h1", name="one")
    two = await make_instance(host="h1", name="two")
    far = await make_instance(host="h2", name="far")
    (v1,) = await net.allocate_for_instance(one.uuid, "p1", "h1", "one")
    (v2,) = await net.allocate_for_instance(two.uuid, "p1", "h1", "two")
    (vf,) = await net.allocate_for_instance(far.uuid, "p1", "h2", "far")
    (n1,) = (await host_state(net.db, net.conf, "h1")).networks
    (n2,) = (await host_state(net.db, net.conf, "h2")).networks
    # the network's gateway (10.0.0.1) is nobody's: each host has its own address,
    # which its bridge carries and its guests are told as gateway and DNS server
    assert n1.multi_host and n1.gateway != n2.gateway
    assert "10.0.0.1" not in (n1.gateway, n2.gateway)
    assert (v1.gateway, v2.gateway, vf.gateway) == (n1.gateway, n1.gateway, n2.gateway)
    assert v1.dns == [n1.gateway] and vf.dns == [n2.gateway]
    taken = {v1.fixed_ip, v2.fixed_ip, vf.fixed_ip}
    assert n1.gateway not in taken and n2.gateway not in taken
    (again,) = await net.vifs_for_instance(one.uuid)
    assert again.gateway == n1.gateway  # read back, not only at allocation
    # the host keeps its address without guests, and nobody else gets it
    await net.deallocate_for_instance(one.uuid)
    await net.deallocate_for_instance(two.uuid)
    three = await make_instance(host="h1", name="three")
    (v3,) = await net.allocate_for_instance(three.uuid, "p1", "h1", "three")
    assert v3.gateway == n1.gateway and v3.fixed_ip != n1.gateway
    with pytest.raises(HostAddressInUse):
        await net.set_fixed_ip_reserved(RequestContext.admin(), n1.gateway, False)


async def test_moving_a_guest_gives_the_new_host_an_address(
        make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(multi_host=True)
    vm = await make_instance(host="h1", name="vm")
    (before,) = await net.allocate_for_instance(vm.uuid, "p1", "h1", "vm")
    await instances.set_fields(net.db, vm.uuid, {"host": "h2"})  # rescheduled
    (after,) = await net.allocate_for_instance(vm.uuid, "p1", "h2", "vm")
    assert after.fixed_ip == before.fixed_ip and after.gateway != before.gateway
    (n2,) = (await host_state(net.db, net.conf, "h2")).networks
    assert n2.gateway == after.gateway


async def test_shared_and_multi_host_networks_side_by_side(
        make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net()                                   # "private": shared
    multi = await net.create_network(ctx(admin=True), label="multi", cidr="10.5.0.0/24",
                                     multi_host=True)
    a = await make_instance(host="h1", name="a")
    b = await make_instance(host="h2", name="b")
    (va,) = await net.allocate_for_instance(a.uuid, "p1", "h1", "a")
    (vb,) = await net.allocate_for_instance(b.uuid, "p1", "h2", "b",
                                            requested_networks=[(multi.uuid, None)])
    state = await host_state(net.db, net.conf, "h1")
    assert [n.label for n in state.networks] == ["private"]  # no guest of h1 on "multi"
    assert state.networks[0].gateway == "10.0.0.1" and va.gateway == "10.0.0.1"
    h2 = {n.label: n for n in (await host_state(net.db, net.conf, "h2")).networks}
    assert set(h2) == {"private", "multi"}
    assert h2["private"].hosts == {va.address: (va.fixed_ip, "a")}  # shared: every guest
    assert h2["multi"].hosts == {vb.address: (vb.fixed_ip, "b")}
    assert vb.gateway == h2["multi"].gateway != "10.5.0.1"


async def test_a_multi_host_network_with_host_addresses_can_be_deleted(
        make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(multi_host=True)
    vm = await make_instance(host="h1", name="vm")
    await net.allocate_for_instance(vm.uuid, "p1", "h1", "vm")
    await net.deallocate_for_instance(vm.uuid)
    (network,) = await net.list_networks(ctx(admin=True))
    await net.delete_network(ctx(admin=True), network.uuid)
    assert await net.list_networks(ctx(admin=True)) == []


async def test_vlan_state(make_net: NetFactory, make_instance: InstanceFactory) -> None:
    net = await make_net(network_manager="vlan", fixed_range="10.0.0.0/16",
                         vlan_interface="eth1")
    vm = await make_instance("pa", host="h1")
    await net.allocate_for_instance(vm.uuid, "pa", "h1", "vm")
    (network,) = (await host_state(net.db, net.conf, "h1")).networks
    assert (network.vlan, network.interface, network.bridge) == (100, "eth1", "nvbr100")


async def test_a_flat_network_carries_its_uplink(make_net: NetFactory,
                                                  make_instance: InstanceFactory) -> None:
    net = await make_net(flat_interface="eth2")
    vm = await make_instance("pa", host="h1")
    await net.allocate_for_instance(vm.uuid, "pa", "h1", "vm")
    (network,) = (await host_state(net.db, net.conf, "h1")).networks
    assert (network.vlan, network.interface) == (None, "eth2")


@contextmanager
def count_queries(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_server_networking_for_many_servers_in_two_queries(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    vms = [await make_instance() for _ in range(40)]
    for vm in vms:
        await net.allocate_for_instance(vm.uuid, "p1", "host-1", vm.hostname)
    floating = (await net.allocate_floating_ip(ctx())).floating
    await net.associate_floating_ip(ctx(), vms[0], floating.address)
    await net.add_security_group(ctx(), vms[0],
                                 (await net.create_security_group(ctx(), "web", "d")).name)
    with count_queries(net.db) as statements:
        views = await net.server_networking(RequestContext.admin(), [vm.uuid for vm in vms])
    assert len(statements) == 2
    first = views[vms[0].uuid]
    assert [(a.label, a.address, a.kind) for a in first.addresses] == [
        ("private", "10.0.0.2", "fixed"), ("private", floating.address, "floating")]
    assert first.addresses[0].mac == first.addresses[1].mac
    assert first.security_groups == ["default", "web"]
    assert views[vms[1].uuid].security_groups == ["default"]
    assert await net.server_networking(ctx(), []) == {}


async def test_a_moving_instance_is_in_the_state_of_both_its_hosts(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    """Its destination plugs and firewalls its NICs before the record names it (a
    live migration's destination before the memory arrives, a revert's source), and
    only while the move is under way."""
    moving = await make_instance(host="h2", name="moving")
    (vif,) = await net.allocate_for_instance(moving.uuid, "p1", "h2", "moving")
    migration = await migrations_records.create(net.db, {
        "instance_uuid": moving.uuid, "source_compute": "h2",
        "dest_compute": "h1", "status": "running", "migration_type": "live-migration"})
    for host in ("h1", "h2"):
        state = await host_state(net.db, net.conf, host)
        assert [i.instance_uuid for i in state.instances] == [moving.uuid]
        assert [v.fixed_ip for v in state.instances[0].vifs] == [vif.fixed_ip]
    await migrations_records.update(net.db, migration.uuid, {"status": "completed"})
    assert (await host_state(net.db, net.conf, "h1")).instances == []


async def test_an_evacuated_instance_is_not_in_its_failed_hosts_state(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    """Whatever of it still runs on the failed host is quarantined there."""
    moved = await make_instance(host="h1", name="evacuee")
    await net.allocate_for_instance(moved.uuid, "p1", "h1", "evacuee")
    await migrations_records.create(net.db, {
        "instance_uuid": moved.uuid, "source_compute": "h2", "dest_compute": "h1",
        "status": "pre-migrating", "migration_type": "evacuation"})
    assert (await host_state(net.db, net.conf, "h2")).instances == []


async def test_an_instance_in_no_group_keeps_its_outbound_traffic(
        net: NetworkAPI, make_instance: InstanceFactory) -> None:
    """Review finding 7: before egress rules nothing a guest sent was filtered; one
    whose last group is removed still sends freely (and receives only replies),
    while one in a group without egress rules sends only what they allow."""
    alone = await make_instance(host="h1", name="alone")
    grouped = await make_instance(host="h1", name="grouped")
    for instance in (alone, grouped):
        await net.allocate_for_instance(instance.uuid, "p1", "h1", instance.hostname)
    empty = await net.create_security_group(ctx(), "empty", "no rules")
    for rule in (await net.get_security_group(ctx(), empty.id)).rules:  # Neutron's egress
        await net.delete_security_group_rule(ctx(), rule.id)
    await net.add_security_group(ctx(), grouped, "empty")
    await net.remove_security_group(ctx(), grouped, "default")
    await net.remove_security_group(ctx(), alone, "default")

    state = await host_state(net.db, net.conf, "h1")
    by_uuid = {i.instance_uuid: i for i in state.instances}
    assert by_uuid[alone.uuid].rules == [
        SecurityRule(None, None, None, cidr="0.0.0.0/0", direction="egress"),
        SecurityRule(None, None, None, cidr="::/0", direction="egress", ethertype="IPv6")]
    assert by_uuid[grouped.uuid].rules == []
    script = render_ruleset(state)
    alone_egress = _chain(script, f"egress-{alone.uuid}")
    assert alone_egress[-2:] == ["return", "counter drop"]  # everything returns
    assert _chain(script, f"egress-{grouped.uuid}")[-2:] != ["return", "counter drop"]
    assert _chain(script, f"instance-{alone.uuid}")[-1] == "counter drop"


def _chain(script: str, name: str) -> list[str]:
    """The rules of one chain of a rendered ruleset."""
    lines = script[script.index(f"chain {name} {{"):].splitlines()
    return [line.strip() for line in lines[1:lines.index("\t}")]]
