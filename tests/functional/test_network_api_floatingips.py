"""Floating IPs through the network API (/network/v2.0/floatingips) over HTTP: an
admin makes an external network with a subnet, a member allocates an address of it,
associates it to its server's port (the NIC's virtual interface uuid, os-interface's
port_id), the compute proxy's os-floating-ips shows the same address and instance,
and every refusal leaves nothing half-made."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from novalet.common.context import RequestContext
from novalet.db import floating_ips as db_floating
from novalet.db import network as db_network
from novalet.db.models import FloatingIp
from novalet.network.subnets import SubnetService, spec_from_body
from tests.functional.conftest import Api, boot, delete_server
from tests.functional.test_network_api_v2 import create, neutron_error
from tests.functional.test_policy_roles import make_user

N = "/network/v2.0"
C = "/compute/v2.1"
OLD = "2.35"  # the compute API's nova-network proxies


async def _external(api: Api, name: str = "ext") -> dict[str, Any]:
    """`openstack network create --external ext` + `subnet create --network ext
    --subnet-range 203.0.113.0/24 --no-dhcp --allocation-pool ... --gateway ...`
    (the subnet through the domain service: its HTTP routes are another slice's)."""
    network = await create(api, user="admin", name=name, **{"router:external": True})
    services = api.cloud.services
    subnets = SubnetService(services.db, services.network.conf)
    await subnets.create_subnet(RequestContext.admin(), spec_from_body({
        "network_id": network["id"], "ip_version": 4, "cidr": "203.0.113.0/24",
        "gateway_ip": "203.0.113.1", "enable_dhcp": False,
        "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.12"}]}))
    return network


async def _fip(api: Api, user: str = "demo", **attrs: Any) -> httpx.Response:
    return await api.request("POST", f"{N}/floatingips", user=user, json={"floatingip": attrs})


async def _port(api: Api, server_id: str, user: str = "demo") -> dict[str, Any]:
    resp = await api.request("GET", f"{C}/servers/{server_id}/os-interface", user=user)
    (attachment,) = resp.json()["interfaceAttachments"]
    return dict(attachment)


async def _held(api: Api) -> list[str]:
    """Every address a project holds, whichever project."""
    return [r.row.address for r in await db_floating.list_held(api.cloud.services.db, None)]


async def test_external_network_gives_floating_ips_not_guest_addresses(api: Api) -> None:
    ext = await _external(api)
    shown = (await api.request("GET", f"{N}/networks/{ext['id']}")).json()["network"]
    assert shown["router:external"] is True and shown["shared"] is False
    assert len(shown["subnets"]) == 1
    # the configured pool is an external network too, named after it
    listed = (await api.request("GET", f"{N}/networks?router:external=true")).json()
    assert sorted(n["name"] for n in listed["networks"]) == ["ext", "public"]
    # the proxy sees the pool; the pool's addresses are the allocation pool's
    pools = (await api.request("GET", f"{C}/os-floating-ip-pools", version=OLD)).json()
    assert {"name": "ext"} in pools["floating_ip_pools"]
    db = api.cloud.services.db
    # no host serves it: no bridge, no DHCP, no guest address
    snapshot = await db_network.host_snapshot(db, "any-host")
    assert ext["id"] not in [n.uuid for n in snapshot.networks]
    resp = await api.request("POST", f"{C}/servers", json={"server": {
        "name": "x", "imageRef": "none", "flavorRef": "1", "networks": [{"uuid": ext["id"]}]}})
    assert resp.status_code == 400, resp.text


async def test_member_allocates_associates_and_releases(api: Api) -> None:
    ext = await _external(api)
    server = await boot(api, "web", networks="auto")
    port = await _port(api, server["id"])
    fixed = port["fixed_ips"][0]["ip_address"]

    resp = await _fip(api, floating_network_id=ext["id"], description="web")
    assert resp.status_code == 201, resp.text
    fip = resp.json()["floatingip"]
    assert fip["floating_ip_address"] in ("203.0.113.10", "203.0.113.11", "203.0.113.12")
    assert (fip["status"], fip["port_id"], fip["router_id"], fip["description"]) == (
        "DOWN", None, None, "web")
    assert fip["floating_network_id"] == ext["id"] and fip["project_id"] == fip["tenant_id"]

    refreshed: list[set[str]] = []
    network_api = api.cloud.services.network
    original = network_api.refresh_hosts

    async def spy(hosts: set[str]) -> None:
        refreshed.append(set(hosts))
        if original is not None:
            await original(hosts)
    network_api.refresh_hosts = spy
    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}",
                             json={"floatingip": {"port_id": port["port_id"]}})
    assert resp.status_code == 200, resp.text
    assoc = resp.json()["floatingip"]
    assert (assoc["port_id"], assoc["fixed_ip_address"], assoc["status"]) == (
        port["port_id"], fixed, "ACTIVE")
    host = await db_network.instance_host(api.cloud.services.db, server["id"])
    assert host and refreshed and host in refreshed[-1]  # its host NATs it at once
    # the compute proxy shows the same floating IP on the same instance
    proxy = (await api.request("GET", f"{C}/os-floating-ips", version=OLD)).json()
    (same,) = [f for f in proxy["floating_ips"] if f["ip"] == fip["floating_ip_address"]]
    assert (same["instance_id"], same["fixed_ip"], same["pool"]) == (server["id"], fixed, "ext")
    filtered = (await api.request("GET", f"{N}/floatingips?port_id={port['port_id']}")).json()
    assert [f["id"] for f in filtered["floatingips"]] == [fip["id"]]
    by_status = (await api.request("GET", f"{N}/floatingips?status=DOWN")).json()
    assert by_status["floatingips"] == []

    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}",
                             json={"floatingip": {"port_id": None}})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["floatingip"]["port_id"], resp.json()["floatingip"]["status"]) == (
        None, "DOWN")
    proxy = (await api.request("GET", f"{C}/os-floating-ips", version=OLD)).json()
    (same,) = [f for f in proxy["floating_ips"] if f["ip"] == fip["floating_ip_address"]]
    assert same["instance_id"] is None

    # created associated at once, then deleted while associated: disassociated first
    resp = await _fip(api, floating_network_id=ext["id"], port_id=port["port_id"])
    assert resp.status_code == 201, resp.text
    second = resp.json()["floatingip"]
    assert (second["port_id"], second["fixed_ip_address"], second["status"]) == (
        port["port_id"], fixed, "ACTIVE")
    # the fixed IP has a floating IP of this network: another one is a 409
    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}",
                             json={"floatingip": {"port_id": port["port_id"]}})
    neutron_error(resp, 409, "FloatingIPPortAlreadyAssociated")
    for made in (second, fip):
        resp = await api.request("DELETE", f"{N}/floatingips/{made['id']}")
        assert resp.status_code == 204, resp.text
        resp = await api.request("GET", f"{N}/floatingips/{made['id']}")
        neutron_error(resp, 404, "FloatingIPNotFound")
    assert await _held(api) == []
    servers = (await api.request("GET", f"{C}/servers/{server['id']}/ips")).json()
    assert [a["addr"] for a in servers["addresses"]["private"]] == [fixed]


async def test_refusals_leave_nothing_held(api: Api, other: str) -> None:
    ext = await _external(api)
    guest = await create(api, name="mine")
    resp = await _fip(api, floating_network_id=guest["id"])
    assert "is not a valid external network" in neutron_error(resp, 400, "BadRequest")
    resp = await _fip(api)
    neutron_error(resp, 400, "HTTPBadRequest")
    resp = await _fip(api, floating_network_id="4a3e6b5e-0000-4000-8000-000000000000")
    neutron_error(resp, 404, "NetworkNotFound")
    # a given address: admin only (Neutron's default policy)
    resp = await _fip(api, floating_network_id=ext["id"], floating_ip_address="203.0.113.10")
    neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await _fip(api, "admin", floating_network_id=ext["id"],
                      floating_ip_address="203.0.113.10", project_id=other)
    assert resp.status_code == 201, resp.text
    theirs = resp.json()["floatingip"]
    resp = await _fip(api, "admin", floating_network_id=ext["id"],
                      floating_ip_address="203.0.113.10")
    neutron_error(resp, 409, "IpAddressAlreadyAllocated")
    resp = await _fip(api, "admin", floating_network_id=ext["id"],
                      floating_ip_address="203.0.113.1")  # the gateway
    neutron_error(resp, 400, "InvalidIpForNetwork")
    # a member may not name another project; nor see or change its floating IPs
    resp = await _fip(api, floating_network_id=ext["id"], project_id=other)
    neutron_error(resp, 400, "BadRequest")
    for method, body in (("GET", None), ("PUT", {"floatingip": {"port_id": None}}),
                         ("DELETE", None)):
        resp = await api.request(method, f"{N}/floatingips/{theirs['id']}", json=body)
        neutron_error(resp, 404, "FloatingIPNotFound")
    listed = (await api.request("GET", f"{N}/floatingips")).json()["floatingips"]
    assert listed == []
    # another project's port is a 404, and nothing stays held
    server = await boot(api, "theirs", user="other", networks="auto")
    their_port = await _port(api, server["id"], user="other")
    resp = await _fip(api, floating_network_id=ext["id"], port_id=their_port["port_id"])
    neutron_error(resp, 404, "PortNotFound")
    # a reader reads but may not allocate
    await make_user(api, "reader", "reader")
    resp = await _fip(api, "reader", floating_network_id=ext["id"])
    neutron_error(resp, 403, "PolicyNotAuthorized")
    assert await _held(api) == ["203.0.113.10"]
    # exhausted: the pool has three addresses
    for _ in range(2):
        assert (await _fip(api, floating_network_id=ext["id"])).status_code == 201
    resp = await _fip(api, floating_network_id=ext["id"])
    neutron_error(resp, 409, "IpAddressGenerationFailure")
    # an external network with floating IPs held is in use
    resp = await api.request("DELETE", f"{N}/networks/{ext['id']}", user="admin")
    neutron_error(resp, 409, "NetworkInUse")
    assert len(await _held(api)) == 3


async def test_the_floating_ips_quota_counts_both_faces(api: Api) -> None:
    ext = await _external(api)
    project = (await create(api, name="any"))["project_id"]
    resp = await api.request("PUT", f"{C}/os-quota-sets/{project}", user="admin",
                             version=OLD, json={"quota_set": {"floating_ips": 1}})
    assert resp.status_code == 200, resp.text
    resp = await api.request("POST", f"{C}/os-floating-ips", version=OLD, json={"pool": "ext"})
    assert resp.status_code == 200, resp.text  # the proxy's allocation counts
    resp = await _fip(api, floating_network_id=ext["id"])
    neutron_error(resp, 409, "OverQuota")
    assert len(await _held(api)) == 1


async def test_a_floating_ip_moves_between_ports(api: Api) -> None:
    ext = await _external(api)
    servers = [await boot(api, name, networks="auto") for name in ("a", "b")]
    ports = [await _port(api, s["id"]) for s in servers]
    resp = await _fip(api, floating_network_id=ext["id"], port_id=ports[0]["port_id"],
                      fixed_ip_address=ports[0]["fixed_ips"][0]["ip_address"])
    assert resp.status_code == 201, resp.text
    fip = resp.json()["floatingip"]
    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}",
                             json={"floatingip": {"port_id": ports[1]["port_id"]}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["floatingip"]["fixed_ip_address"] == ports[1]["fixed_ips"][0][
        "ip_address"]
    proxy = (await api.request("GET", f"{C}/os-floating-ips", version=OLD)).json()
    (same,) = proxy["floating_ips"]
    assert same["fixed_ip"] == ports[1]["fixed_ips"][0]["ip_address"]
    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}", json={
        "floatingip": {"port_id": ports[0]["port_id"], "fixed_ip_address": "10.9.9.9"}})
    neutron_error(resp, 400, "BadRequest")
    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}",
                             json={"floatingip": {"port_id": "not-a-uuid"}})
    neutron_error(resp, 400, "HTTPBadRequest")


async def test_a_floating_ip_waits_on_an_unbound_port_and_follows_its_servers(api: Api) -> None:
    """Neutron's (and Terraform's) order: make a port, give it a floating IP, boot on
    the port. The hosts NAT the address only while a server has the port; a server
    deleted gives the port back with its floating IP still on it, and the next server
    booted on the port gets it again."""
    ext = await _external(api)
    services = api.cloud.services
    network = await services.network.create_network(
        RequestContext.admin(), label="mine", cidr="10.49.0.0/28",
        project_id=(await services.identity.list_projects(name="demo"))[0].id)
    resp = await api.request("POST", f"{N}/ports", json={"port": {"network_id": network.uuid}})
    assert resp.status_code == 201, resp.text
    port = resp.json()["port"]
    fixed = port["fixed_ips"][0]["ip_address"]
    resp = await _fip(api, floating_network_id=ext["id"], port_id=port["id"])
    assert resp.status_code == 201, resp.text
    fip = resp.json()["floatingip"]
    assert (fip["port_id"], fip["fixed_ip_address"], fip["status"]) == (
        port["id"], fixed, "DOWN")  # nothing NATs it yet
    address = fip["floating_ip_address"]

    async def nat(host: str) -> list[tuple[str, str]]:
        return [(f, x) for f, x, _ in (await db_network.host_snapshot(services.db, host)).floating]

    for name in ("first", "second"):
        server = await boot(api, name, networks=[{"port": port["id"]}])
        host = await db_network.instance_host(services.db, server["id"])
        assert host and (address, fixed) in await nat(host)
        shown = (await api.request("GET", f"{N}/floatingips/{fip['id']}")).json()["floatingip"]
        assert (shown["port_id"], shown["status"]) == (port["id"], "ACTIVE")
        ips = (await api.request("GET", f"{C}/servers/{server['id']}/ips")).json()
        assert address in [a["addr"] for a in ips["addresses"]["mine"]]
        await delete_server(api, server["id"])
        assert (address, fixed) not in await nat(host)
        kept = (await api.request("GET", f"{N}/floatingips/{fip['id']}")).json()["floatingip"]
        assert (kept["port_id"], kept["fixed_ip_address"], kept["status"]) == (
            port["id"], fixed, "DOWN")
    # moved off the unbound port and back; deleting the port lets it go
    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}",
                             json={"floatingip": {"port_id": None}})
    assert resp.json()["floatingip"]["port_id"] is None
    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}",
                             json={"floatingip": {"port_id": port["id"]}})
    assert resp.json()["floatingip"]["port_id"] == port["id"], resp.text
    resp = await api.request("DELETE", f"{N}/ports/{port['id']}")
    assert resp.status_code == 204, resp.text
    resp = await api.request("GET", f"{N}/floatingips/{fip['id']}")
    assert resp.json()["floatingip"]["port_id"] is None


async def test_another_projects_unbound_port_is_not_found(api: Api, other: str) -> None:
    ext = await _external(api)
    services = api.cloud.services
    network = await services.network.create_network(
        RequestContext.admin(), label="theirs", cidr="10.49.1.0/28", project_id=other)
    resp = await api.request("POST", f"{N}/ports", user="admin",
                             json={"port": {"network_id": network.uuid, "project_id": other}})
    assert resp.status_code == 201, resp.text
    resp = await _fip(api, floating_network_id=ext["id"], port_id=resp.json()["port"]["id"])
    neutron_error(resp, 404, "PortNotFound")
    assert await _held(api) == []


async def test_readdressing_an_unbound_port_lets_its_floating_ip_go(api: Api) -> None:
    """The old address goes back to the network: the floating IP must not stay NATed
    to it, or the next port (any project's) given that address would receive it."""
    ext = await _external(api)
    services = api.cloud.services
    network = await services.network.create_network(
        RequestContext.admin(), label="mine", cidr="10.49.2.0/28",
        project_id=(await services.identity.list_projects(name="demo"))[0].id)
    resp = await api.request("POST", f"{N}/ports", json={"port": {
        "network_id": network.uuid, "fixed_ips": [{"ip_address": "10.49.2.5"}]}})
    port = resp.json()["port"]
    fip = (await _fip(api, floating_network_id=ext["id"], port_id=port["id"])).json()[
        "floatingip"]
    resp = await api.request("PUT", f"{N}/ports/{port['id']}", json={"port": {
        "fixed_ips": [{"ip_address": "10.49.2.6"}]}})
    assert resp.status_code == 200, resp.text
    shown = (await api.request("GET", f"{N}/floatingips/{fip['id']}")).json()["floatingip"]
    assert (shown["port_id"], shown["fixed_ip_address"]) == (None, None)
    resp = await api.request("POST", f"{N}/ports", json={"port": {
        "network_id": network.uuid, "fixed_ips": [{"ip_address": "10.49.2.5"}]}})
    assert resp.status_code == 201, resp.text
    assert (await api.request("GET", f"{N}/floatingips/{fip['id']}")).json()[
        "floatingip"]["port_id"] is None


async def test_a_lost_race_is_a_409_that_says_retry(api: Api, other: str,
                                                    monkeypatch: Any) -> None:
    """The floating IP was read while demo held it, then released and given to
    another project before the association was written: nothing changes."""
    ext = await _external(api)
    server = await boot(api, "web", networks="auto")
    port = await _port(api, server["id"])
    fip = (await _fip(api, floating_network_id=ext["id"])).json()["floatingip"]
    db = api.cloud.services.db
    read = db_floating.get_held

    async def read_then_lose_it(database: Any, floating_uuid: str) -> Any:
        record = await read(database, floating_uuid)
        monkeypatch.setattr(db_floating, "get_held", read)
        await db_network.release_floating_ip(db, record.row.id)
        async with db.transaction() as s:
            await s.execute(update(FloatingIp).where(FloatingIp.id == record.row.id).values(
                project_id=other))
        return record

    monkeypatch.setattr(db_floating, "get_held", read_then_lose_it)
    resp = await api.request("PUT", f"{N}/floatingips/{fip['id']}",
                             json={"floatingip": {"port_id": port["port_id"]}})
    error = neutron_error(resp, 409, "Conflict")
    assert "changed while it was being associated" in str(error), error
    (record,) = await db_floating.list_held(db, other)
    assert record.row.fixed_ip_id is None


async def test_a_floating_ip_follows_its_port_through_attach_and_detach(api: Api) -> None:
    """os-interface attach of a port holding a floating IP: the server's host NATs it
    (refreshed at once); detach: the port keeps it and the host stops NATing it."""
    ext = await _external(api)
    services = api.cloud.services
    network = await services.network.create_network(
        RequestContext.admin(), label="mine", cidr="10.49.3.0/28",
        project_id=(await services.identity.list_projects(name="demo"))[0].id)
    port = (await api.request("POST", f"{N}/ports", json={"port": {
        "network_id": network.uuid}})).json()["port"]
    fixed = port["fixed_ips"][0]["ip_address"]
    fip = (await _fip(api, floating_network_id=ext["id"], port_id=port["id"])).json()[
        "floatingip"]
    # on the default network by name: with two networks, "auto" is ambiguous (409)
    private = (await api.request("GET", f"{N}/networks?name=private")).json()["networks"]
    server = await boot(api, "hotplug", networks=[{"uuid": private[0]["id"]}])
    host = await db_network.instance_host(services.db, server["id"])
    assert host
    refreshed: list[set[str]] = []
    original = services.network.refresh_hosts

    async def spy(hosts: set[str]) -> None:
        refreshed.append(set(hosts))
        if original is not None:
            await original(hosts)
    services.network.refresh_hosts = spy

    async def nat() -> list[tuple[str, str]]:
        return [(f, x) for f, x, _ in (await db_network.host_snapshot(services.db, host)).floating]

    resp = await api.request("POST", f"{C}/servers/{server['id']}/os-interface",
                             json={"interfaceAttachment": {"port_id": port["id"]}})
    assert resp.status_code == 200, resp.text
    assert (fip["floating_ip_address"], fixed) in await nat()
    assert any(host in hosts for hosts in refreshed)
    refreshed.clear()
    resp = await api.request("DELETE", f"{C}/servers/{server['id']}/os-interface/{port['id']}")
    assert resp.status_code == 202, resp.text
    assert (fip["floating_ip_address"], fixed) not in await nat()
    assert any(host in hosts for hosts in refreshed)
    kept = (await api.request("GET", f"{N}/floatingips/{fip['id']}")).json()["floatingip"]
    assert (kept["port_id"], kept["status"]) == (port["id"], "DOWN")
    await delete_server(api, server["id"])
