"""Routers through the network API (/network/v2.0/routers) over HTTP: a member makes
a network and subnet, a router with a gateway on an external network, attaches the
subnet; the gateway holds an address no floating IP allocation hands out; floating
IPs of a network-API network need that router; Neutron's errors, scope between
projects and the admin-only gateway attributes; every refusal leaves nothing made."""

from __future__ import annotations

from typing import Any

import httpx

from novalet.db import routers as db_routers
from novalet.network import state as network_state
from tests.functional.conftest import Api, boot
from tests.functional.test_network_api_v2 import create, neutron_error
from tests.functional.test_policy_roles import make_user

N = "/network/v2.0"
C = "/compute/v2.1"


async def _external(api: Api, name: str = "ext") -> dict[str, Any]:
    network = await create(api, user="admin", name=name, **{"router:external": True})
    resp = await api.request("POST", f"{N}/subnets", user="admin", json={"subnet": {
        "network_id": network["id"], "ip_version": 4, "cidr": "203.0.113.0/24",
        "enable_dhcp": False,
        "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.12"}]}})
    assert resp.status_code == 201, resp.text
    network["subnet_id"] = resp.json()["subnet"]["id"]
    return network


async def _project_subnet(api: Api, user: str = "demo", cidr: str = "10.60.0.0/24",
                          name: str = "private") -> dict[str, Any]:
    network = await create(api, user=user, name=name)
    resp = await api.request("POST", f"{N}/subnets", user=user, json={"subnet": {
        "network_id": network["id"], "ip_version": 4, "cidr": cidr}})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["subnet"])


async def _router(api: Api, user: str = "demo", **attrs: Any) -> httpx.Response:
    return await api.request("POST", f"{N}/routers", user=user, json={"router": attrs})


async def _interface(api: Api, router_id: str, action: str, user: str = "demo",
                     **body: Any) -> httpx.Response:
    return await api.request("PUT", f"{N}/routers/{router_id}/{action}_router_interface",
                             user=user, json=body)


async def test_router_crud_with_gateway_and_interface(api: Api) -> None:
    ext = await _external(api)
    subnet = await _project_subnet(api)
    resp = await _router(api, name="r1", external_gateway_info={"network_id": ext["id"]})
    assert resp.status_code == 201, resp.text
    router = resp.json()["router"]
    assert router["name"] == "r1" and router["status"] == "ACTIVE"
    assert router["admin_state_up"] is True and router["project_id"] == router["tenant_id"]
    gateway = router["external_gateway_info"]
    assert gateway["network_id"] == ext["id"] and gateway["enable_snat"] is True
    (fixed,) = gateway["external_fixed_ips"]
    assert fixed["subnet_id"] == ext["subnet_id"]
    assert fixed["ip_address"] in ("203.0.113.10", "203.0.113.11", "203.0.113.12")
    # the gateway's address is no floating IP: the next allocations get the other two
    got = []
    for _ in range(2):
        resp = await api.request("POST", f"{N}/floatingips", json={"floatingip": {
            "floating_network_id": ext["id"]}})
        assert resp.status_code == 201, resp.text
        got.append(resp.json()["floatingip"]["floating_ip_address"])
    assert fixed["ip_address"] not in got
    resp = await api.request("POST", f"{N}/floatingips", json={"floatingip": {
        "floating_network_id": ext["id"]}})
    neutron_error(resp, 409, "IpAddressGenerationFailure")
    # attach the subnet: Neutron's answer
    resp = await _interface(api, router["id"], "add", subnet_id=subnet["id"])
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert info["id"] == router["id"] and info["subnet_id"] == subnet["id"]
    assert info["subnet_ids"] == [subnet["id"]] and info["network_id"] == subnet["network_id"]
    assert info["port_id"] and info["project_id"] == router["project_id"]
    # list, filters, fields, show, update
    listed = (await api.request("GET", f"{N}/routers?name=r1&fields=id&fields=name")).json()
    assert listed["routers"] == [{"id": router["id"], "name": "r1"}]
    assert (await api.request("GET", f"{N}/routers?name=nope")).json()["routers"] == []
    resp = await api.request("PUT", f"{N}/routers/{router['id']}", json={"router": {
        "name": "r2", "description": "edge", "admin_state_up": False}})
    assert resp.status_code == 200, resp.text
    changed = resp.json()["router"]
    assert (changed["name"], changed["description"], changed["status"]) == (
        "r2", "edge", "DOWN")
    # in use while the subnet is attached; the subnet and its network can't go either
    resp = await api.request("DELETE", f"{N}/routers/{router['id']}")
    assert "still has ports" in neutron_error(resp, 409, "RouterInUse")
    resp = await api.request("DELETE", f"{N}/subnets/{subnet['id']}")
    neutron_error(resp, 409, "SubnetInUse")
    resp = await api.request("DELETE", f"{N}/networks/{subnet['network_id']}")
    neutron_error(resp, 409, "NetworkInUse")
    # nor the external network's subnet while the gateway holds an address of it
    resp = await api.request("DELETE", f"{N}/subnets/{ext['subnet_id']}", user="admin")
    neutron_error(resp, 409, "SubnetInUse")
    # detach by port id, then delete: the address is free again
    resp = await _interface(api, router["id"], "remove", port_id=info["port_id"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["subnet_id"] == subnet["id"]
    resp = await _interface(api, router["id"], "remove", subnet_id=subnet["id"])
    assert subnet["id"] in neutron_error(resp, 404, "RouterInterfaceNotFoundForSubnet")
    resp = await _interface(api, router["id"], "remove", port_id=info["port_id"])
    neutron_error(resp, 404, "RouterInterfaceNotFound")
    resp = await api.request("DELETE", f"{N}/routers/{router['id']}")
    assert resp.status_code == 204, resp.text
    resp = await api.request("GET", f"{N}/routers/{router['id']}")
    neutron_error(resp, 404, "RouterNotFound")
    resp = await api.request("POST", f"{N}/floatingips", json={"floatingip": {
        "floating_network_id": ext["id"]}})
    assert resp.json()["floatingip"]["floating_ip_address"] == fixed["ip_address"]


async def test_gateway_set_moved_and_cleared(api: Api) -> None:
    ext = await _external(api)
    router = (await _router(api, name="r")).json()["router"]
    assert router["external_gateway_info"] is None
    url = f"{N}/routers/{router['id']}"
    resp = await api.request("PUT", url, json={"router": {
        "external_gateway_info": {"network_id": ext["id"]}}})
    assert resp.status_code == 200, resp.text
    held = await db_routers.get_router(api.cloud.services.db, router["id"])
    assert held is not None and held.gw_address is not None
    # the admin picks the address and turns SNAT off
    resp = await api.request("PUT", url, user="admin", json={"router": {
        "external_gateway_info": {"network_id": ext["id"], "enable_snat": False,
                                  "external_fixed_ips": [{"ip_address": "203.0.113.12"}]}}})
    assert resp.status_code == 200, resp.text
    gateway = resp.json()["router"]["external_gateway_info"]
    assert gateway["enable_snat"] is False
    assert gateway["external_fixed_ips"][0]["ip_address"] == "203.0.113.12"
    resp = await api.request("PUT", url, json={"router": {"external_gateway_info": None}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["router"]["external_gateway_info"] is None
    # every address is free again
    for _ in range(3):
        resp = await api.request("POST", f"{N}/floatingips", json={"floatingip": {
            "floating_network_id": ext["id"]}})
        assert resp.status_code == 201, resp.text


async def test_admin_only_gateway_attributes_and_bad_input(api: Api) -> None:
    ext = await _external(api)
    private = await _project_subnet(api)
    resp = await _router(api, external_gateway_info={"network_id": ext["id"],
                                                     "enable_snat": False})
    neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await _router(api, external_gateway_info={
        "network_id": ext["id"], "external_fixed_ips": [{"ip_address": "203.0.113.11"}]})
    neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await _router(api, external_gateway_info={"network_id": private["network_id"]})
    assert "not a valid external network" in neutron_error(resp, 400, "BadRequest")
    resp = await _router(api, external_gateway_info={
        "network_id": "00000000-0000-0000-0000-000000000000"})
    neutron_error(resp, 404, "NetworkNotFound")
    resp = await _router(api, external_gateway_info={"network_id": "nope"})
    neutron_error(resp, 400, "HTTPBadRequest")
    resp = await _router(api, external_gateway_info={"network_id": ext["id"], "x": 1})
    neutron_error(resp, 400, "HTTPBadRequest")
    resp = await _router(api, user="admin", external_gateway_info={
        "network_id": ext["id"], "external_fixed_ips": [{"ip_address": "198.51.100.1"}]})
    neutron_error(resp, 400, "InvalidIpForNetwork")
    resp = await _router(api, status="DOWN")
    neutron_error(resp, 400, "HTTPBadRequest")
    # nothing was made by any refusal
    assert (await api.request("GET", f"{N}/routers", user="admin")).json()["routers"] == []
    router = (await _router(api)).json()["router"]
    resp = await _interface(api, router["id"], "add")
    neutron_error(resp, 400, "BadRequest")
    resp = await _interface(api, router["id"], "add", subnet_id=ext["subnet_id"])
    neutron_error(resp, 400, "BadRequest")
    resp = await _interface(api, router["id"], "add",
                            subnet_id="00000000-0000-0000-0000-000000000000")
    neutron_error(resp, 404, "SubnetNotFound")
    assert (await _interface(api, router["id"], "add", subnet_id=private["id"])
            ).status_code == 200
    resp = await _interface(api, router["id"], "add", subnet_id=private["id"])
    assert "already has a port" in neutron_error(resp, 400, "BadRequest")
    other = (await _router(api)).json()["router"]
    resp = await _interface(api, other["id"], "add", subnet_id=private["id"])
    neutron_error(resp, 400, "BadRequest")


async def test_scope_between_projects_and_reader(api: Api, other: str) -> None:
    mine = (await _router(api, name="mine")).json()["router"]
    theirs_subnet = await _project_subnet(api, user="other", cidr="10.61.0.0/24")
    resp = await api.request("GET", f"{N}/routers/{mine['id']}", user="other")
    neutron_error(resp, 404, "RouterNotFound")
    resp = await api.request("PUT", f"{N}/routers/{mine['id']}", user="other",
                             json={"router": {"name": "x"}})
    neutron_error(resp, 404, "RouterNotFound")
    resp = await api.request("DELETE", f"{N}/routers/{mine['id']}", user="other")
    neutron_error(resp, 404, "RouterNotFound")
    assert (await api.request("GET", f"{N}/routers", user="other")).json()["routers"] == []
    # another project's subnet: invisible to the member
    resp = await _interface(api, mine["id"], "add", subnet_id=theirs_subnet["id"])
    neutron_error(resp, 404, "SubnetNotFound")
    # an admin sees every router; even it can't put another project's subnet on it
    listed = (await api.request("GET", f"{N}/routers", user="admin")).json()["routers"]
    assert [r["id"] for r in listed] == [mine["id"]]
    await make_user(api, "reader", "reader")
    assert (await api.request("GET", f"{N}/routers/{mine['id']}", user="reader")
            ).status_code == 200
    resp = await api.request("PUT", f"{N}/routers/{mine['id']}", user="reader",
                             json={"router": {"name": "x"}})
    neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await _router(api, user="reader")
    neutron_error(resp, 403, "PolicyNotAuthorized")


async def test_quota(api: Api) -> None:
    api.cloud.services.network.conf.set("quota", "routers", 2)
    for _ in range(2):
        assert (await _router(api)).status_code == 201
    neutron_error(await _router(api), 409, "OverQuota")
    assert len((await api.request("GET", f"{N}/routers")).json()["routers"]) == 2


async def test_extensions_listed(api: Api) -> None:
    for alias in ("router", "ext-gw-mode"):
        resp = await api.request("GET", f"{N}/extensions/{alias}")
        assert resp.status_code == 200, resp.text


async def test_floating_ip_needs_the_router_and_shows_it(api: Api) -> None:
    ext = await _external(api)
    subnet = await _project_subnet(api)
    server = await boot(api, "web", networks=[{"uuid": subnet["network_id"]}])
    ports = (await api.request("GET", f"{N}/ports?device_id={server['id']}")).json()["ports"]
    port_id = ports[0]["id"]
    fip = (await api.request("POST", f"{N}/floatingips", json={"floatingip": {
        "floating_network_id": ext["id"]}})).json()["floatingip"]
    url = f"{N}/floatingips/{fip['id']}"
    resp = await api.request("PUT", url, json={"floatingip": {"port_id": port_id}})
    assert subnet["id"] in neutron_error(resp, 404, "ExternalGatewayForFloatingIPNotFound")
    router = (await _router(api, external_gateway_info={"network_id": ext["id"]})
              ).json()["router"]
    resp = await api.request("PUT", url, json={"floatingip": {"port_id": port_id}})
    neutron_error(resp, 404, "ExternalGatewayForFloatingIPNotFound")  # no interface yet
    assert (await _interface(api, router["id"], "add", subnet_id=subnet["id"])
            ).status_code == 200
    resp = await api.request("PUT", url, json={"floatingip": {"port_id": port_id}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["floatingip"]["router_id"] == router["id"]
    listed = (await api.request("GET", f"{N}/floatingips?router_id={router['id']}")).json()
    assert [f["id"] for f in listed["floatingips"]] == [fip["id"]]
    # the floating IP holds the interface and the gateway
    resp = await _interface(api, router["id"], "remove", subnet_id=subnet["id"])
    neutron_error(resp, 409, "RouterInterfaceInUseByFloatingIP")
    resp = await api.request("PUT", f"{N}/routers/{router['id']}", json={"router": {
        "external_gateway_info": None}})
    neutron_error(resp, 409, "RouterExternalGatewayInUseByFloatingIp")
    resp = await api.request("PUT", url, json={"floatingip": {"port_id": None}})
    assert resp.status_code == 200 and resp.json()["floatingip"]["router_id"] is None
    assert (await _interface(api, router["id"], "remove", subnet_id=subnet["id"])
            ).status_code == 200


async def test_host_state_snats_only_through_a_router(api: Api) -> None:
    """The host state: a network-API network needs a router (no gateway: no way
    out), the router's gateway address becomes its SNAT source; the nova-network
    default network keeps reaching the outside through the host."""
    ext = await _external(api)
    subnet = await _project_subnet(api)
    server = await boot(api, "web", networks=[{"uuid": subnet["network_id"]}])
    host = (await api.request("GET", f"{C}/servers/{server['id']}", user="admin",
                              version="2.100")).json()["server"]["OS-EXT-SRV-ATTR:host"]
    services = api.cloud.services

    async def served() -> dict[str, Any]:
        state = await network_state.host_state(services.db, api.cloud.conf, host)
        return {n.uuid: n for n in state.networks}

    before = await served()
    private = before[subnet["network_id"]]
    assert private.needs_router and private.snat_address is None
    assert all(not n.needs_router for u, n in before.items() if u != subnet["network_id"])
    router = (await _router(api, external_gateway_info={"network_id": ext["id"]})
              ).json()["router"]
    address = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert (await served())[subnet["network_id"]].snat_address is None  # no interface
    await _interface(api, router["id"], "add", subnet_id=subnet["id"])
    assert (await served())[subnet["network_id"]].snat_address == address
    await api.request("PUT", f"{N}/routers/{router['id']}", user="admin", json={"router": {
        "external_gateway_info": {"network_id": ext["id"], "enable_snat": False}}})
    assert (await served())[subnet["network_id"]].snat_address is None


async def _attached(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any],
                                       dict[str, Any]]:
    """A router with a gateway and an interface: (external, subnet, router, interface)."""
    ext = await _external(api)
    subnet = await _project_subnet(api)
    router = (await _router(api, name="edge", external_gateway_info={
        "network_id": ext["id"]})).json()["router"]
    resp = await _interface(api, router["id"], "add", subnet_id=subnet["id"])
    assert resp.status_code == 200, resp.text
    return ext, subnet, router, resp.json()


async def test_router_interface_is_a_port(api: Api) -> None:
    """What Ansible's router module and `openstack port list --router` read."""
    _, subnet, router, info = await _attached(api)
    normal = await api.request("POST", f"{N}/ports", json={"port": {
        "network_id": subnet["network_id"]}})
    assert normal.status_code == 201, normal.text
    resp = await api.request("GET", f"{N}/ports?device_id={router['id']}")
    assert resp.status_code == 200, resp.text
    (port,) = resp.json()["ports"]
    assert set(port) == set(normal.json()["port"])  # the keys every port shows
    assert port["id"] == info["port_id"] and port["device_id"] == router["id"]
    assert port["device_owner"] == "network:router_interface"
    assert port["network_id"] == subnet["network_id"]
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"],
                                  "ip_address": subnet["gateway_ip"]}]
    assert port["project_id"] == port["tenant_id"] == router["project_id"]
    assert port["status"] == "ACTIVE" and port["admin_state_up"] is True
    assert port["security_groups"] == [] and port["port_security_enabled"] is False
    assert port["mac_address"].startswith("fa:16:3e:") and port["tags"] == []
    # the filters clients use, fields, show (the same), paging over both kinds
    for query in (f"fixed_ips=subnet_id={subnet['id']}&device_owner=network:router_interface",
                  f"network_id={subnet['network_id']}&device_owner=network:router_interface"):
        found = (await api.request("GET", f"{N}/ports?{query}&fields=id")).json()["ports"]
        assert found == [{"id": port["id"]}], query
    every = (await api.request("GET", f"{N}/ports?network_id={subnet['network_id']}")
             ).json()["ports"]
    assert {p["id"] for p in every} == {port["id"], normal.json()["port"]["id"]}
    paged = (await api.request("GET", f"{N}/ports?network_id={subnet['network_id']}"
                               f"&limit=1&marker={min(p['id'] for p in every)}")).json()
    assert [p["id"] for p in paged["ports"]] == [max(p["id"] for p in every)]
    shown = await api.request("GET", f"{N}/ports/{port['id']}")
    assert shown.status_code == 200 and shown.json()["port"] == port
    resp = await api.request("PUT", f"{N}/ports/{port['id']}/tags/edge")
    assert resp.status_code == 201, resp.text
    tagged = (await api.request("GET", f"{N}/ports?tags=edge")).json()["ports"]
    assert [(p["id"], p["tags"]) for p in tagged] == [(port["id"], ["edge"])]
    # the router down: its ports are DOWN
    await api.request("PUT", f"{N}/routers/{router['id']}",
                      json={"router": {"admin_state_up": False}})
    shown = await api.request("GET", f"{N}/ports/{port['id']}")
    assert shown.json()["port"]["status"] == "DOWN"
    # changed only through the router; not a port add_router_interface takes
    resp = await api.request("DELETE", f"{N}/ports/{port['id']}")
    assert "network:router_interface" in neutron_error(resp, 409, "L3PortInUse")
    resp = await api.request("PUT", f"{N}/ports/{port['id']}", json={"port": {"name": "x"}})
    neutron_error(resp, 409, "RouterPortInUse")
    resp = await _interface(api, router["id"], "add", port_id=port["id"])
    neutron_error(resp, 400, "BadRequest")
    # removed by port id: the port is gone
    resp = await _interface(api, router["id"], "remove", port_id=port["id"])
    assert resp.status_code == 200, resp.text
    neutron_error(await api.request("GET", f"{N}/ports/{port['id']}"), 404, "PortNotFound")
    assert (await api.request("GET", f"{N}/ports?device_id={router['id']}")
            ).json()["ports"] == []


async def test_router_ports_scope_and_gateway(api: Api, other: str) -> None:
    ext, _, router, info = await _attached(api)
    port_id = info["port_id"]
    for method in ("GET", "DELETE"):
        resp = await api.request(method, f"{N}/ports/{port_id}", user="other")
        neutron_error(resp, 404, "PortNotFound")
    resp = await api.request("PUT", f"{N}/ports/{port_id}", user="other",
                             json={"port": {"name": "x"}})
    neutron_error(resp, 404, "PortNotFound")
    assert (await api.request("GET", f"{N}/ports?device_id={router['id']}", user="other")
            ).json()["ports"] == []
    # the member sees no gateway port; an admin sees it (project "", as Neutron)
    mine = (await api.request("GET", f"{N}/ports?device_id={router['id']}")).json()["ports"]
    assert [p["device_owner"] for p in mine] == ["network:router_interface"]
    listed = (await api.request("GET", f"{N}/ports?device_id={router['id']}", user="admin")
              ).json()["ports"]
    (gateway,) = [p for p in listed if p["device_owner"] == "network:router_gateway"]
    fixed = router["external_gateway_info"]["external_fixed_ips"]
    assert gateway["fixed_ips"] == fixed and gateway["network_id"] == ext["id"]
    assert gateway["project_id"] == "" and gateway["binding:vif_type"] == "distributed"
    resp = await api.request("GET", f"{N}/ports/{gateway['id']}", user="admin")
    assert resp.status_code == 200 and resp.json()["port"]["id"] == gateway["id"]
    neutron_error(await api.request("GET", f"{N}/ports/{gateway['id']}"), 404, "PortNotFound")
    resp = await api.request("DELETE", f"{N}/ports/{gateway['id']}", user="admin")
    assert "network:router_gateway" in neutron_error(resp, 409, "L3PortInUse")
    # router ports don't count against the project's port quota
    api.cloud.services.network.conf.set("quota", "ports", 1)
    resp = await api.request("POST", f"{N}/ports", json={"port": {
        "network_id": info["network_id"]}})
    assert resp.status_code == 201, resp.text


async def test_add_floating_ip_on_the_compute_face_needs_the_router(api: Api) -> None:
    """Review finding 7: addFloatingIp made the router check the network API makes."""
    ext = await _external(api)
    subnet = await _project_subnet(api)
    server = await boot(api, "web", networks=[{"uuid": subnet["network_id"]}])
    fip = (await api.request("POST", f"{N}/floatingips", json={"floatingip": {
        "floating_network_id": ext["id"]}})).json()["floatingip"]
    action = f"{C}/servers/{server['id']}/action"
    body = {"addFloatingIp": {"address": fip["floating_ip_address"]}}
    resp = await api.request("POST", action, version="2.1", json=body)
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    assert "not reachable from subnet" in message and subnet["id"] in message
    shown = (await api.request("GET", f"{N}/floatingips/{fip['id']}")).json()["floatingip"]
    assert shown["port_id"] is None and shown["fixed_ip_address"] is None
    router = (await _router(api, external_gateway_info={"network_id": ext["id"]})
              ).json()["router"]
    assert (await _interface(api, router["id"], "add", subnet_id=subnet["id"])
            ).status_code == 200
    resp = await api.request("POST", action, version="2.1", json=body)
    assert resp.status_code == 202, resp.text
    shown = (await api.request("GET", f"{N}/floatingips/{fip['id']}")).json()["floatingip"]
    assert shown["router_id"] == router["id"] and shown["port_id"]


async def test_a_gateway_ports_tags_go_with_the_gateway(api: Api) -> None:
    """Review finding 12: the tags of a router's gateway port (its id is the held
    address's) go when the gateway is cleared or the router deleted, so the next
    router given that address shows a gateway port without them."""
    ext = await _external(api)

    async def tagged_gateway(router_id: str) -> str:
        listed = (await api.request("GET", f"{N}/ports?device_id={router_id}",
                                    user="admin")).json()["ports"]
        (gateway,) = [p for p in listed if p["device_owner"] == "network:router_gateway"]
        assert gateway["tags"] == []
        resp = await api.request("PUT", f"{N}/ports/{gateway['id']}/tags/edge", user="admin")
        assert resp.status_code == 201, resp.text
        return str(gateway["id"])

    gateway = {"network_id": ext["id"], "external_fixed_ips": [
        {"subnet_id": ext["subnet_id"], "ip_address": "203.0.113.10"}]}
    router = (await _router(api, user="admin", external_gateway_info=gateway)
              ).json()["router"]
    port_id = await tagged_gateway(router["id"])
    resp = await api.request("PUT", f"{N}/routers/{router['id']}", user="admin",
                             json={"router": {"external_gateway_info": None}})
    assert resp.status_code == 200, resp.text
    assert (await api.request("GET", f"{N}/ports?tags=edge", user="admin")
            ).json()["ports"] == []
    resp = await api.request("PUT", f"{N}/routers/{router['id']}", user="admin",
                             json={"router": {"external_gateway_info": gateway}})
    assert resp.status_code == 200, resp.text
    assert await tagged_gateway(router["id"]) == port_id  # the same row, untagged again
    resp = await api.request("DELETE", f"{N}/routers/{router['id']}", user="admin")
    assert resp.status_code == 204, resp.text
    second = (await _router(api, user="admin", external_gateway_info=gateway)
              ).json()["router"]
    assert await tagged_gateway(second["id"]) == port_id
