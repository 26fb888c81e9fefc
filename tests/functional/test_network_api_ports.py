"""The network API's ports over HTTP (fake driver, in-process bus): CRUD with Neutron's
errors and nothing half-made on a refusal, scope, policy on binding:* and on
addresses, list filters, and both faces of a server's NIC (the compute API's
os-interface and addresses, the network API's port) showing one row."""

from __future__ import annotations

from typing import Any

import pytest

from novalet.api.network.extensions import EXTENSIONS
from novalet.api.network.ports import EXTENSION_ATTRIBUTES
from novalet.common.context import RequestContext
from novalet.network.model import PortFilter
from novalet.network.state import host_state
from tests.functional.conftest import Api, boot, delete_server
from tests.functional.test_network_api_v2 import N, neutron_error

V = "/compute/v2.1"
P = f"{N}/ports"


async def _project(api: Api, name: str = "demo") -> str:
    (project,) = await api.cloud.services.identity.list_projects(name=name)
    return str(project.id)


async def _network(api: Api, label: str, cidr: str, project: str | None) -> tuple[str, str]:
    """A network with its subnet (as os-networks makes them); (network, subnet) ids."""
    services = api.cloud.services
    network = await services.network.create_network(RequestContext.admin(), label=label,
                                                     cidr=cidr, project_id=project)
    shown = (await api.request("GET", f"{N}/networks/{network.uuid}", user="admin")).json()
    return network.uuid, shown["network"]["subnets"][0]


async def _create(api: Api, user: str = "demo", **port: Any) -> dict[str, Any]:
    resp = await api.request("POST", P, user=user, json={"port": port})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["port"])


async def _port_ids(api: Api) -> list[str]:
    resp = await api.request("GET", P, user="admin")
    return [p["id"] for p in resp.json()["ports"]]


async def _default_group(api: Api, user: str = "demo") -> str:
    resp = await api.request("GET", f"{V}/os-security-groups", user=user, version="2.1")
    (group,) = [g for g in resp.json()["security_groups"] if g["name"] == "default"]
    found = await api.cloud.services.network.default_group(group["tenant_id"], None)
    return found.uuid


async def test_a_member_makes_shows_updates_and_deletes_a_port(api: Api) -> None:
    network, subnet = await _network(api, "mine", "10.40.0.0/28", await _project(api))
    port = await _create(api, network_id=network, name="p1",
                         fixed_ips=[{"subnet_id": subnet, "ip_address": "10.40.0.5"}])
    assert port["fixed_ips"] == [{"subnet_id": subnet, "ip_address": "10.40.0.5"}]
    assert (port["name"], port["status"], port["device_id"], port["device_owner"]) == (
        "p1", "DOWN", "", "")
    assert port["mac_address"].startswith("fa:16:3e:")
    assert port["security_groups"] == [await _default_group(api)]
    assert port["port_security_enabled"] is True and port["allowed_address_pairs"] == []
    assert port["binding:vnic_type"] == "normal"
    assert "binding:host_id" not in port and "binding:vif_type" not in port  # admin only
    as_admin = (await api.request("GET", f"{P}/{port['id']}", user="admin")).json()["port"]
    assert (as_admin["binding:host_id"], as_admin["binding:vif_type"],
            as_admin["binding:vif_details"], as_admin["binding:profile"]) == (
        "", "unbound", {}, {})

    resp = await api.request("PUT", f"{P}/{port['id']}", json={"port": {
        "name": "renamed", "admin_state_up": False,
        "fixed_ips": [{"ip_address": "10.40.0.9"}],
        "allowed_address_pairs": [{"ip_address": "10.40.0.12"}]}})
    assert resp.status_code == 200, resp.text
    updated = resp.json()["port"]
    assert (updated["name"], updated["admin_state_up"]) == ("renamed", False)
    assert updated["fixed_ips"] == [{"subnet_id": subnet, "ip_address": "10.40.0.9"}]
    assert updated["allowed_address_pairs"] == [{"ip_address": "10.40.0.12",
                                                 "mac_address": port["mac_address"]}]
    # .5 went back to the pool
    again = await _create(api, network_id=network, fixed_ips=[{"ip_address": "10.40.0.5"}])
    for made in (port, again):
        resp = await api.request("DELETE", f"{P}/{made['id']}")
        assert resp.status_code == 204, resp.text
    neutron_error(await api.request("GET", f"{P}/{port['id']}"), 404, "PortNotFound")
    await _create(api, network_id=network, fixed_ips=[{"ip_address": "10.40.0.9"}])


@pytest.mark.parametrize(("port", "code", "type_name"), [
    ({"fixed_ips": [{"ip_address": "10.41.0.5"}]}, 409, "IpAddressAlreadyAllocated"),
    ({"mac_address": "FA:16:3E:00:00:01"}, 409, "MacAddressInUse"),
    ({"fixed_ips": [{"subnet_id": "SUBNET", "ip_address": "10.9.9.9"}]}, 400,
     "InvalidIpForSubnet"),
    ({"fixed_ips": [{"ip_address": "10.9.9.9"}]}, 400, "InvalidIpForNetwork"),
    ({"fixed_ips": [{"ip_address": "10.41.0.1"}]}, 400, "InvalidIpForSubnet"),  # gateway
    ({"fixed_ips": [{"subnet_id": "nope"}]}, 400, "InvalidInput"),
    ({"fixed_ips": [{"ip_address": "10.41.0.6"}, {"ip_address": "10.41.0.7"}]}, 400,
     "InvalidInput"),
    ({"fixed_ips": []}, 400, "InvalidInput"),
    ({"mac_address": "01:00:5e:00:00:01"}, 400, "InvalidInput"),  # multicast
    ({"mac_address": "fa:16:3e:00:00:42\n"}, 400, "HTTPBadRequest"),  # too long: 17 at most
    ({"allowed_address_pairs": [{"ip_address": "10.41.0.9",
                                 "mac_address": "fa:16:3e:00:00:43\n"}]}, 400, "InvalidInput"),
    ({"port_security_enabled": False, "security_groups": ["DEFAULT"]}, 400,
     "PortSecurityAndIPRequiredForSecurityGroups"),
    ({"port_security_enabled": False, "allowed_address_pairs": [{"ip_address": "10.41.0.9"}]},
     409, "AddressPairAndPortSecurityRequired"),
    ({"allowed_address_pairs": [{"ip_address": "10.41.0.0/24"}]}, 400, "InvalidInput"),
    ({"allowed_address_pairs": [{"ip_address": "10.41.0.9"}] * 2}, 400,
     "DuplicateAddressPairInRequest"),
    ({"security_groups": ["no-such-group"]}, 404, "SecurityGroupNotFound"),
    ({"device_owner": "compute:nova"}, 400, "InvalidInput"),
    ({"device_id": "somewhere"}, 400, "InvalidInput"),
    ({"binding:host_id": "fake-host"}, 403, "PolicyNotAuthorized"),
    ({"binding:vnic_type": "direct"}, 400, "HTTPBadRequest"),
])
async def test_a_refused_port_leaves_nothing_behind(api: Api, port: dict[str, Any], code: int,
                                                    type_name: str) -> None:
    network, subnet = await _network(api, "mine", "10.41.0.0/28", await _project(api))
    await _create(api, network_id=network, mac_address="fa:16:3e:00:00:01",
                  fixed_ips=[{"ip_address": "10.41.0.5"}])
    before = await _port_ids(api)
    if port.get("security_groups") == ["DEFAULT"]:
        port["security_groups"] = [await _default_group(api)]
    for entry in port.get("fixed_ips", []):
        if entry.get("subnet_id") == "SUBNET":
            entry["subnet_id"] = subnet
    resp = await api.request("POST", P, json={"port": {"network_id": network, **port}})
    neutron_error(resp, code, type_name)
    assert await _port_ids(api) == before


async def test_an_admin_is_told_binding_host_follows_the_server(api: Api) -> None:
    network, _ = await _network(api, "mine", "10.42.0.0/28", await _project(api))
    resp = await api.request("POST", P, user="admin", json={"port": {
        "network_id": network, "binding:host_id": "fake-host"}})
    assert "boot the server" in neutron_error(resp, 400, "InvalidInput")


async def test_a_full_network_is_ip_address_generation_failure(api: Api) -> None:
    network, _ = await _network(api, "tiny", "10.43.0.0/30", await _project(api))
    await _create(api, network_id=network)  # .2, the one host address
    resp = await api.request("POST", P, json={"port": {"network_id": network}})
    neutron_error(resp, 409, "IpAddressGenerationFailure")
    resp = await api.request("DELETE", f"{N}/networks/{network}", user="admin")
    neutron_error(resp, 409, "NetworkInUse")


async def test_scope_other_projects_and_shared_networks(api: Api, other: str) -> None:
    network, _ = await _network(api, "mine", "10.44.0.0/28", await _project(api))
    port = await _create(api, network_id=network)
    for method in ("GET", "PUT", "DELETE"):
        resp = await api.request(method, f"{P}/{port['id']}", user="other",
                                 json={"port": {"name": "x"}})
        neutron_error(resp, 404, "PortNotFound")
    assert (await api.request("GET", P, user="other")).json()["ports"] == []
    resp = await api.request("POST", P, user="other", json={"port": {"network_id": network}})
    neutron_error(resp, 404, "NetworkNotFound")
    # nova-network's unassigned network is shared: a port on it, but no address of
    # one's choosing, no MAC, no port security off (the network owner's or an admin's)
    private = (await api.request("GET", f"{N}/networks?name=private")).json()["networks"][0]
    mine = await _create(api, user="other", network_id=private["id"])
    assert mine["tenant_id"] == other
    for attrs in ({"fixed_ips": [{"ip_address": "10.0.0.200"}]},
                  {"mac_address": "fa:16:3e:00:00:99"}, {"port_security_enabled": False}):
        resp = await api.request("POST", P, user="other", json={"port": {
            "network_id": private["id"], **attrs}})
        neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await api.request("POST", P, user="other", json={"port": {
        "network_id": private["id"], "fixed_ips": [{"subnet_id": private["subnets"][0]}]}})
    assert resp.status_code == 201, resp.text
    listed = (await api.request("GET", P, user="admin")).json()["ports"]
    assert {port["id"], mine["id"]} <= {p["id"] for p in listed}


async def test_port_security_off_needs_no_groups(api: Api) -> None:
    network, _ = await _network(api, "mine", "10.45.0.0/28", await _project(api))
    port = await _create(api, network_id=network)
    url = f"{P}/{port['id']}"
    resp = await api.request("PUT", url, json={"port": {"port_security_enabled": False}})
    neutron_error(resp, 409, "PortSecurityPortHasSecurityGroup")
    resp = await api.request("PUT", url, json={"port": {"port_security_enabled": False,
                                                        "security_groups": []}})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["port"]["port_security_enabled"],
            resp.json()["port"]["security_groups"]) == (False, [])
    open_port = await _create(api, network_id=network, port_security_enabled=False)
    assert open_port["security_groups"] == []


async def test_bulk_create_makes_all_or_none(api: Api) -> None:
    network, _ = await _network(api, "mine", "10.46.0.0/28", await _project(api))
    before = await _port_ids(api)
    resp = await api.request("POST", P, json={"ports": [
        {"network_id": network, "name": "a"},
        {"network_id": network, "fixed_ips": [{"ip_address": "10.46.0.1"}]}]})
    neutron_error(resp, 400, "InvalidIpForSubnet")
    assert await _port_ids(api) == before
    resp = await api.request("POST", P, json={"ports": [
        {"network_id": network, "name": "a"}, {"network_id": network, "name": "b"}]})
    assert resp.status_code == 201, resp.text
    assert [p["name"] for p in resp.json()["ports"]] == ["a", "b"]


async def test_a_servers_nic_is_its_port(api: Api) -> None:
    """Both faces show one row: the port's MAC and address are os-interface's and the
    server's; device_id is the server, device_owner compute:<zone>; it is ACTIVE on
    its host; its groups are the server's; deleting it is refused while bound."""
    server = await boot(api, "web", networks="auto")
    sid = server["id"]
    resp = await api.request("GET", f"{V}/servers/{sid}/os-interface")
    (attachment,) = resp.json()["interfaceAttachments"]
    resp = await api.request("GET", f"{P}?device_id={sid}")
    (port,) = resp.json()["ports"]
    assert port["id"] == attachment["port_id"]
    assert port["mac_address"] == attachment["mac_addr"]
    assert port["fixed_ips"] == attachment["fixed_ips"]  # subnet ids too
    addresses = (await api.request("GET", f"{V}/servers/{sid}/ips")).json()["addresses"]
    assert [a["addr"] for a in addresses["private"]] == [port["fixed_ips"][0]["ip_address"]]
    assert (port["device_owner"], port["status"]) == ("compute:nova", "ACTIVE")
    assert port["security_groups"] == [await _default_group(api)]
    as_admin = (await api.request("GET", f"{P}/{port['id']}", user="admin")).json()["port"]
    shown = (await api.request("GET", f"{V}/servers/{sid}", user="admin",
                               version="2.100")).json()["server"]
    assert as_admin["binding:host_id"] == shown["OS-EXT-SRV-ATTR:host"]
    assert as_admin["binding:vif_type"] == "bridge"

    for query in (f"mac_address={port['mac_address']}", "device_owner=compute:nova",
                  f"fixed_ips=ip_address={port['fixed_ips'][0]['ip_address']}",
                  f"fixed_ips=subnet_id={port['fixed_ips'][0]['subnet_id']}",
                  f"network_id={port['network_id']}"):
        listed = (await api.request("GET", f"{P}?{query}")).json()["ports"]
        assert [p["id"] for p in listed] == [port["id"]], query
    resp = await api.request("GET", f"{P}?fixed_ips=ip_address=10.99.0.1")
    assert resp.json()["ports"] == []
    neutron_error(await api.request("GET", f"{P}?fixed_ips=bogus"), 400, "BadRequest")

    resp = await api.request("DELETE", f"{P}/{port['id']}")
    assert "os-interface" in neutron_error(resp, 409, "PortInUse")
    resp = await api.request("PUT", f"{P}/{port['id']}", json={"port": {
        "fixed_ips": [{"ip_address": "10.0.0.250"}]}})
    neutron_error(resp, 403, "PolicyNotAuthorized")  # not the network's owner
    resp = await api.request("PUT", f"{P}/{port['id']}", user="admin", json={"port": {
        "fixed_ips": [{"ip_address": "10.0.0.250"}]}})
    assert "os-interface" in neutron_error(resp, 409, "PortInUse")
    # its groups are the server's: clearing them here clears the server's
    resp = await api.request("PUT", f"{P}/{port['id']}", json={"port": {
        "security_groups": [], "name": "front"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["port"]["name"] == "front"
    resp = await api.request("GET", f"{V}/servers/{sid}/os-security-groups", version="2.1")
    assert resp.json()["security_groups"] == []

    await delete_server(api, sid)
    assert (await api.request("GET", f"{P}?device_id={sid}")).json()["ports"] == []


async def test_each_port_extension_shows_its_attributes(api: Api) -> None:
    network, _ = await _network(api, "mine", "10.47.0.0/28", await _project(api))
    port = await _create(api, user="admin", network_id=network,
                         project_id=await _project(api))
    for alias, attributes in EXTENSION_ATTRIBUTES.items():
        if alias in EXTENSIONS:
            for attribute in attributes:
                assert attribute in port, (alias, attribute)


async def test_a_servers_port_settings_reach_its_hosts_firewall_state(api: Api) -> None:
    """Port security, admin state and address pairs of a server's port are in the
    state its host's network service renders the firewall from."""
    server = await boot(api, "fw", networks="auto")
    (port,) = (await api.request("GET", f"{P}?device_id={server['id']}")).json()["ports"]
    host = (await api.request("GET", f"{V}/servers/{server['id']}", user="admin",
                              version="2.100")).json()["server"]["OS-EXT-SRV-ATTR:host"]
    services = api.cloud.services

    async def filters() -> list[PortFilter]:
        state = await host_state(services.db, api.cloud.conf, host)
        (instance,) = [i for i in state.instances if i.instance_uuid == server["id"]]
        return instance.port_filters

    assert await filters() == []
    resp = await api.request("PUT", f"{P}/{port['id']}", user="admin", json={"port": {
        "allowed_address_pairs": [{"ip_address": "10.0.0.200"}], "admin_state_up": False}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["port"]["status"] == "DOWN"
    assert await filters() == [PortFilter(port["id"], admin_state_up=False, address_pairs=[
        ["10.0.0.200", port["mac_address"]]])]
    resp = await api.request("PUT", f"{P}/{port['id']}", user="admin", json={"port": {
        "allowed_address_pairs": [], "admin_state_up": True, "security_groups": [],
        "port_security_enabled": False}})
    assert resp.status_code == 200, resp.text
    assert await filters() == [PortFilter(port["id"], port_security=False)]
    await delete_server(api, server["id"])


async def test_another_projects_port_keeps_a_network_shared(api: Api, other: str) -> None:
    network, _ = await _network(api, "mine", "10.48.0.0/28", await _project(api))
    resp = await api.request("PUT", f"{N}/networks/{network}", user="admin",
                             json={"network": {"shared": True}})
    assert resp.status_code == 200, resp.text
    theirs = await _create(api, user="other", network_id=network)
    resp = await api.request("PUT", f"{N}/networks/{network}", user="admin",
                             json={"network": {"shared": False}})
    neutron_error(resp, 409, "InvalidSharedSetting")
    assert (await api.request("DELETE", f"{P}/{theirs['id']}", user="other")).status_code == 204
    resp = await api.request("PUT", f"{N}/networks/{network}", user="admin",
                             json={"network": {"shared": False}})
    assert resp.status_code == 200, resp.text


# --- servers on ports -------------------------------------------------------------------

async def test_a_server_boots_on_a_port_and_gives_it_back(api: Api) -> None:
    """The port becomes the server's NIC (its MAC, address and groups), and when the
    server goes it is unbound again, keeping its address, as Nova leaves a
    preexisting port."""
    network, subnet = await _network(api, "mine", "10.49.0.0/28", await _project(api))
    port = await _create(api, network_id=network, fixed_ips=[{"ip_address": "10.49.0.7"}])
    server = await boot(api, "on-port", networks=[{"port": port["id"]}])
    sid = server["id"]
    (attachment,) = (await api.request("GET", f"{V}/servers/{sid}/os-interface")).json()[
        "interfaceAttachments"]
    assert (attachment["port_id"], attachment["mac_addr"]) == (port["id"], port["mac_address"])
    assert [a["addr"] for a in server["addresses"]["mine"]] == ["10.49.0.7"]
    bound = (await api.request("GET", f"{P}/{port['id']}")).json()["port"]
    assert (bound["device_id"], bound["device_owner"], bound["status"]) == (
        sid, "compute:nova", "ACTIVE")
    assert bound["security_groups"] == port["security_groups"]
    groups = (await api.request("GET", f"{V}/servers/{sid}/os-security-groups",
                                version="2.1")).json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    # one server per port
    image = server["image"]["id"]
    resp = await api.request("POST", f"{V}/servers", version="2.100", json={"server": {
        "name": "second", "imageRef": image, "flavorRef": "1",
        "networks": [{"port": port["id"]}]}})
    assert resp.status_code == 409, resp.text
    await delete_server(api, sid)
    unbound = (await api.request("GET", f"{P}/{port['id']}")).json()["port"]
    assert (unbound["device_id"], unbound["device_owner"], unbound["status"]) == ("", "", "DOWN")
    assert unbound["fixed_ips"] == [{"subnet_id": subnet, "ip_address": "10.49.0.7"}]
    assert unbound["security_groups"] == port["security_groups"]
    resp = await api.request("DELETE", f"{P}/{port['id']}")
    assert resp.status_code == 204, resp.text


async def test_a_boot_on_a_bad_port_is_refused_before_anything_is_made(api: Api,
                                                                       other: str) -> None:
    network, _ = await _network(api, "mine", "10.50.0.0/28", await _project(api))
    port = await _create(api, network_id=network)
    image = (await boot(api, "first", networks="none"))["image"]["id"]

    async def create(networks: Any, user: str = "demo", **extra: Any) -> Any:
        return await api.request("POST", f"{V}/servers", version="2.100", user=user,
                                 json={"server": {"name": "x", "imageRef": image,
                                                  "flavorRef": "1", "networks": networks,
                                                  **extra}})

    before = (await api.request("GET", f"{V}/servers", user="admin",
                                version="2.100")).json()["servers"]
    assert (await create([{"port": "no-such-port"}])).status_code == 400
    assert (await create([{"port": port["id"]}], user="other")).status_code == 400
    assert (await create([{"port": port["id"]}] * 2)).status_code == 400
    assert (await create([{"port": port["id"]}], max_count=2)).status_code == 400
    after = (await api.request("GET", f"{V}/servers", user="admin",
                               version="2.100")).json()["servers"]
    assert after == before
    shown = (await api.request("GET", f"{P}/{port['id']}")).json()["port"]
    assert shown["device_id"] == ""


async def test_a_port_attaches_to_a_running_server_and_detaches_unbound(api: Api) -> None:
    network, subnet = await _network(api, "mine", "10.51.0.0/28", await _project(api))
    port = await _create(api, network_id=network, fixed_ips=[{"ip_address": "10.51.0.9"}])
    # on the default network by name: with two networks, "auto" is ambiguous (409)
    private = (await api.request("GET", f"{N}/networks?name=private")).json()["networks"]
    server = await boot(api, "hotplug", networks=[{"uuid": private[0]["id"]}])
    sid = server["id"]
    resp = await api.request("POST", f"{V}/servers/{sid}/os-interface",
                             json={"interfaceAttachment": {"port_id": port["id"]}})
    assert resp.status_code == 200, resp.text
    attached = resp.json()["interfaceAttachment"]
    assert (attached["port_id"], attached["mac_addr"]) == (port["id"], port["mac_address"])
    assert [f["ip_address"] for f in attached["fixed_ips"]] == ["10.51.0.9"]
    assert api.cloud.compute.driver.specs[sid].network_info[-1]["id"] == port["id"]
    bound = (await api.request("GET", f"{P}/{port['id']}")).json()["port"]
    assert bound["device_id"] == sid
    resp = await api.request("POST", f"{V}/servers/{sid}/os-interface",
                             json={"interfaceAttachment": {"port_id": port["id"]}})
    assert resp.status_code == 409, resp.text  # bound already

    resp = await api.request("DELETE", f"{V}/servers/{sid}/os-interface/{port['id']}")
    assert resp.status_code == 202, resp.text
    unbound = (await api.request("GET", f"{P}/{port['id']}")).json()["port"]
    assert (unbound["device_id"], unbound["fixed_ips"]) == (
        "", [{"subnet_id": subnet, "ip_address": "10.51.0.9"}])
    await delete_server(api, sid)
