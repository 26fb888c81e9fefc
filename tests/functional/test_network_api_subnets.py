"""/network/v2.0/subnets over HTTP: CRUD with Neutron's shapes and errors, bulk
create (all or none), scope (another project's 404, a reader's 403), list filters,
and the compute API's view of the same subnet."""

from __future__ import annotations

from typing import Any

import pytest

from novalet.db import network as db_network
from tests.functional.conftest import Api, boot, delete_server
from tests.functional.test_network_api_v2 import N, create, neutron_error
from tests.functional.test_policy_roles import make_user

VIEW = {"id", "name", "description", "network_id", "tenant_id", "project_id", "ip_version",
        "cidr", "gateway_ip", "enable_dhcp", "allocation_pools", "dns_nameservers",
        "host_routes", "subnetpool_id", "ipv6_ra_mode", "ipv6_address_mode", "created_at",
        "updated_at", "tags", "router:external"}


async def subnet(api: Api, network_id: str, cidr: str, user: str = "demo",
                 **attrs: Any) -> dict[str, Any]:
    resp = await api.request("POST", f"{N}/subnets", user=user, json={"subnet": {
        "network_id": network_id, "cidr": cidr, "ip_version": 4, **attrs}})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["subnet"])


async def test_a_member_creates_shows_lists_updates_and_deletes_a_subnet(api: Api) -> None:
    network = await create(api, name="n1")
    made = await subnet(api, network["id"], "10.9.0.0/24", name="s1",
                        dns_nameservers=["192.0.2.53"],
                        host_routes=[{"destination": "10.10.0.0/24", "nexthop": "10.9.0.5"}])
    assert set(made) == VIEW and made["router:external"] is False
    assert (made["gateway_ip"], made["enable_dhcp"], made["ip_version"]) == ("10.9.0.1", True, 4)
    assert made["allocation_pools"] == [{"start": "10.9.0.2", "end": "10.9.0.254"}]
    assert made["tenant_id"] == made["project_id"] == network["project_id"]
    assert made["subnetpool_id"] is None and made["ipv6_ra_mode"] is None
    url = f"{N}/subnets/{made['id']}"
    assert (await api.request("GET", url)).json()["subnet"] == made
    shown = await api.request("GET", url + "?fields=cidr&fields=name")
    assert shown.json()["subnet"] == {"cidr": "10.9.0.0/24", "name": "s1"}
    net = (await api.request("GET", f"{N}/networks/{network['id']}")).json()["network"]
    assert net["subnets"] == [made["id"]]

    resp = await api.request("PUT", url, json={"subnet": {
        "name": "s2", "enable_dhcp": False, "dns_nameservers": [], "gateway_ip": "10.9.0.254",
        "allocation_pools": [{"start": "10.9.0.10", "end": "10.9.0.20"}]}})
    assert resp.status_code == 200, resp.text
    changed = resp.json()["subnet"]
    assert (changed["name"], changed["enable_dhcp"], changed["dns_nameservers"],
            changed["gateway_ip"]) == ("s2", False, [], "10.9.0.254")
    row = await db_network.get_network(api.cloud.services.db, network["id"])
    assert (row.gateway, row.enable_dhcp, row.dhcp_start) == ("10.9.0.254", False, "10.9.0.10")

    assert (await api.request("DELETE", url)).status_code == 204
    neutron_error(await api.request("GET", url), 404, "SubnetNotFound")
    row = await db_network.get_network(api.cloud.services.db, network["id"])
    assert row.cidr is None


async def test_list_filters_fields_and_sorting(api: Api) -> None:
    one, two = await create(api, name="a"), await create(api, name="b")
    s1 = await subnet(api, one["id"], "10.9.1.0/24", name="first")
    s2 = await subnet(api, two["id"], "10.9.2.0/24", name="second", enable_dhcp=False)
    listed = (await api.request("GET", f"{N}/subnets?cidr=10.9.2.0/24")).json()["subnets"]
    assert [s["id"] for s in listed] == [s2["id"]]
    listed = (await api.request("GET", f"{N}/subnets?enable_dhcp=false&fields=id&network_id="
                                f"{one['id']}&network_id={two['id']}")).json()
    assert listed["subnets"] == [{"id": s2["id"]}]  # (the external pool's has no DHCP too)
    resp = await api.request("GET", f"{N}/subnets?network_id={one['id']}&sort_key=name"
                             "&sort_dir=asc")
    assert [s["id"] for s in resp.json()["subnets"]] == [s1["id"]]
    resp = await api.request("GET", f"{N}/subnets?name=first&name=second&sort_key=name"
                             "&sort_dir=desc")
    assert [s["name"] for s in resp.json()["subnets"]] == ["second", "first"]
    neutron_error(await api.request("GET", f"{N}/subnets?color=blue"), 400, "BadRequest")
    neutron_error(await api.request("GET", f"{N}/subnets?ip_version=four"), 400, "BadRequest")


async def test_bulk_create_makes_all_or_none(api: Api) -> None:
    one, two = await create(api, name="b1"), await create(api, name="b2")
    resp = await api.request("POST", f"{N}/subnets", json={"subnets": [
        {"network_id": one["id"], "cidr": "10.9.3.0/24", "ip_version": 4},
        {"network_id": two["id"], "cidr": "10.9.3.0/25", "ip_version": 4}]})
    assert "overlaps" in neutron_error(resp, 400, "InvalidInput")
    listed = (await api.request("GET", f"{N}/subnets?cidr=10.9.3.0/24")).json()["subnets"]
    assert listed == []
    resp = await api.request("POST", f"{N}/subnets", json={"subnets": [
        {"network_id": one["id"], "cidr": "10.9.3.0/24", "ip_version": 4},
        {"network_id": two["id"], "cidr": "10.9.4.0/24", "ip_version": 4}]})
    assert resp.status_code == 201, resp.text
    assert [s["cidr"] for s in resp.json()["subnets"]] == ["10.9.3.0/24", "10.9.4.0/24"]
    neutron_error(await api.request("POST", f"{N}/subnets", json={"subnets": []}),
                  400, "HTTPBadRequest")


def _on_net(**subnet: Any) -> dict[str, Any]:
    """A body for the test's network (its id filled in by the test)."""
    return {"subnet": {"network_id": "NET", **subnet}}


_C = "10.9.5.0/24"


@pytest.mark.parametrize(("body", "code", "type_name", "words"), [
    ({"sub": {}}, 400, "HTTPBadRequest", "Unable to find 'subnet'"),
    ({"subnet": {"color": "blue"}}, 400, "BadRequest", "Unrecognized attribute(s) 'color'"),
    ({"subnet": {"cidr": _C}}, 400, "BadRequest", "network_id must be specified"),
    (_on_net(name=5), 400, "InvalidInput", "Invalid input for name"),
    (_on_net(cidr=_C, enable_dhcp="maybe"), 400, "InvalidInput", "enable_dhcp"),
    (_on_net(cidr="10.9.5.1/24"), 400, "InvalidInput", "10.9.5.0/24"),
    (_on_net(cidr=_C, ip_version=6), 400, "InvalidInput", "IPv6"),
    (_on_net(cidr=_C, allocation_pools=[{"start": "10.9.5.10", "end": "10.9.5.20"},
                                        {"start": "10.9.5.15", "end": "10.9.5.30"}]),
     409, "OverlappingAllocationPools", "overlapping"),
    (_on_net(cidr=_C, allocation_pools=[{"start": "10.9.5.10", "end": "10.9.6.20"}]),
     400, "OutOfBoundsAllocationPool", "spans beyond"),
    (_on_net(cidr=_C, allocation_pools=[{"start": "10.9.5.20", "end": "10.9.5.10"}]),
     400, "InvalidAllocationPool", "not valid"),
    (_on_net(cidr=_C, gateway_ip="10.9.5.12",
             allocation_pools=[{"start": "10.9.5.10", "end": "10.9.5.20"}]),
     409, "GatewayConflictWithAllocationPools", "10.9.5.12"),
    (_on_net(cidr=_C, dns_nameservers=["1.1.1.1", "8.8.8.8", "9.9.9.9"]),
     400, "DNSNameServersExhausted", "limit 2"),
])
async def test_bad_bodies_are_neutron_400s_and_409s(api: Api, body: dict[str, Any], code: int,
                                                    type_name: str, words: str) -> None:
    network = await create(api, name="bad")
    inner = body.get("subnet")
    if isinstance(inner, dict) and inner.get("network_id") == "NET":
        inner["network_id"] = network["id"]
    resp = await api.request("POST", f"{N}/subnets", json=body)
    assert words in neutron_error(resp, code, type_name)


async def test_update_refuses_read_only_and_bad_values(api: Api) -> None:
    network = await create(api, name="u")
    made = await subnet(api, network["id"], "10.9.6.0/24")
    url = f"{N}/subnets/{made['id']}"
    resp = await api.request("PUT", url, json={"subnet": {"cidr": "10.9.7.0/24"}})
    assert "read-only attribute cidr" in neutron_error(resp, 400, "InvalidInput")
    resp = await api.request("PUT", url, json={"subnet": {"allocation_pools": [
        {"start": "10.9.6.1", "end": "10.9.6.9"}]}})
    neutron_error(resp, 409, "GatewayConflictWithAllocationPools")
    resp = await api.request("PUT", url, json={"subnet": {"shape": "round"}})
    neutron_error(resp, 400, "BadRequest")
    resp = await api.request("POST", f"{N}/subnets", json={"subnet": {
        "network_id": network["id"], "cidr": "10.9.8.0/24", "ip_version": 4}})
    assert "one IPv4 subnet per network" in neutron_error(resp, 400, "InvalidInput")


async def test_another_project_sees_404_and_a_reader_403(api: Api, other: str) -> None:
    network = await create(api, name="mine")
    made = await subnet(api, network["id"], "10.9.9.0/24")
    url = f"{N}/subnets/{made['id']}"
    for method in ("GET", "PUT", "DELETE"):
        resp = await api.request(method, url, user="other", json={"subnet": {"name": "x"}})
        neutron_error(resp, 404, "SubnetNotFound")
    listed = (await api.request("GET", f"{N}/subnets", user="other")).json()["subnets"]
    assert made["id"] not in [s["id"] for s in listed]
    theirs = await create(api, user="other", name="theirs")
    resp = await api.request("POST", f"{N}/subnets", json={"subnet": {
        "network_id": theirs["id"], "cidr": "10.9.10.0/24", "ip_version": 4}})
    neutron_error(resp, 404, "NetworkNotFound")
    resp = await api.request("POST", f"{N}/subnets", json={"subnet": {
        "network_id": theirs["id"], "cidr": "10.9.10.0/24", "tenant_id": other}})
    neutron_error(resp, 404, "NetworkNotFound")

    await make_user(api, "reader", "reader")
    assert (await api.request("GET", url, user="reader")).status_code == 200
    for method in ("PUT", "DELETE"):
        resp = await api.request(method, url, user="reader", json={"subnet": {"name": "x"}})
        neutron_error(resp, 403, "PolicyNotAuthorized")
    other_net = await create(api, name="for-reader")
    resp = await api.request("POST", f"{N}/subnets", user="reader", json={"subnet": {
        "network_id": other_net["id"], "cidr": "10.9.11.0/24"}})
    assert "create_subnet" in neutron_error(resp, 403, "PolicyNotAuthorized")


async def test_a_subnet_a_server_holds_an_address_of_is_in_use(api: Api) -> None:
    network = await create(api, name="busy")
    made = await subnet(api, network["id"], "10.9.12.0/24")
    server = await boot(api, networks=[{"uuid": network["id"]}])
    url = f"{N}/subnets/{made['id']}"
    assert made["id"] in neutron_error(await api.request("DELETE", url), 409, "SubnetInUse")
    addresses = (await api.request("GET", f"/compute/v2.1/servers/{server['id']}")
                 ).json()["server"]["addresses"]
    assert addresses["busy"][0]["addr"] == "10.9.12.2"
    await delete_server(api, server["id"])
    assert (await api.request("DELETE", url)).status_code == 204


async def test_the_compute_proxy_shows_the_subnet_made_here(api: Api) -> None:
    network = await create(api, user="admin", name="proxied")
    await subnet(api, network["id"], "10.9.13.0/24", user="admin",
                 dns_nameservers=["192.0.2.53"])
    resp = await api.request("GET", f"/compute/v2.1/os-networks/{network['id']}", user="admin",
                             version="2.1")
    assert resp.status_code == 200, resp.text
    shown = resp.json()["network"]
    assert (shown["cidr"], shown["gateway"], shown["dns1"]) == (
        "10.9.13.0/24", "10.9.13.1", "192.0.2.53")


async def test_the_external_networks_subnet_is_seen_by_members_as_external(api: Api) -> None:
    """subnet-external-network: every project sees an external network's subnets,
    and a subnet shows (and filters on) its network's router:external."""
    resp = await api.request("GET", f"{N}/subnets?router:external=true", user="demo")
    assert resp.status_code == 200, resp.text
    (public,) = resp.json()["subnets"]
    assert public["router:external"] is True and public["cidr"] == "172.24.4.0/24"
    resp = await api.request("GET", f"{N}/extensions/subnet-external-network", user="demo")
    assert resp.status_code == 200, resp.text
