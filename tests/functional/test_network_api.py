"""nova-network's compute API proxies over HTTP: os-networks, os-floating-ips,
os-floating-ip-pools, os-security-groups, os-security-group-rules, os-fixed-ips, the
network server actions and the addresses and groups in server bodies."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from novalet.db import instances
from tests.functional.conftest import Api, boot

V = "/compute/v2.1"
OLD = "2.35"  # the last microversion with the proxy APIs


async def _boot(api: Api, name: str = "vm", user: str = "demo") -> dict[str, Any]:
    """Boot a server and make sure it has its NIC (allocation is idempotent, so this
    holds whether or not the build flow allocates already)."""
    server = await boot(api, name, user=user, networks="auto")
    services = api.cloud.services
    instance = await instances.get(services.db, server["id"])
    await services.network.allocate_for_instance(instance.uuid, instance.project_id,
                                                 instance.host, instance.hostname,
                                                 user_id=instance.user_id)
    return server


def _error(resp: httpx.Response, code: int) -> str:
    assert resp.status_code == code, resp.text
    (body,) = resp.json().values()
    assert body["code"] == code
    return str(body["message"])


async def _action(api: Api, sid: str, body: dict[str, Any], version: str = OLD,
                  user: str = "demo") -> httpx.Response:
    return await api.request("POST", f"{V}/servers/{sid}/action", user=user, version=version,
                             json=body)


async def _show(api: Api, sid: str, version: str = "2.100") -> dict[str, Any]:
    resp = await api.request("GET", f"{V}/servers/{sid}", version=version)
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["server"])


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/os-networks"), ("POST", "/os-networks"), ("POST", "/os-networks/add"),
    ("GET", "/os-networks/x"), ("DELETE", "/os-networks/x"), ("POST", "/os-networks/x/action"),
    ("GET", "/os-floating-ips"), ("POST", "/os-floating-ips"), ("GET", "/os-floating-ips/1"),
    ("DELETE", "/os-floating-ips/1"), ("GET", "/os-floating-ip-pools"),
    ("GET", "/os-security-groups"), ("POST", "/os-security-groups"),
    ("GET", "/os-security-groups/1"), ("PUT", "/os-security-groups/1"),
    ("DELETE", "/os-security-groups/1"), ("POST", "/os-security-group-rules"),
    ("DELETE", "/os-security-group-rules/1"), ("GET", "/os-fixed-ips/10.0.0.2"),
    ("POST", "/os-fixed-ips/10.0.0.2/action"),
])
async def test_proxies_are_gone_from_236(api: Api, method: str, path: str) -> None:
    resp = await api.request(method, V + path, user="admin", version="2.36", json={})
    assert _error(resp, 404) == "The resource could not be found."


# --- os-networks -------------------------------------------------------------------


async def test_networks_list_and_show(api: Api) -> None:
    resp = await api.request("GET", f"{V}/os-networks")
    assert resp.status_code == 200
    (network,) = resp.json()["networks"]
    assert network == {"id": network["id"], "cidr": "10.0.0.0/24",
                       "netmask": "255.255.255.0", "gateway": "10.0.0.1",
                       "broadcast": "10.0.0.255", "dns1": None, "dns2": None,
                       "cidr_v6": None, "gateway_v6": None, "label": "private",
                       "netmask_v6": None}
    resp = await api.request("GET", f"{V}/os-networks/{network['id']}", user="admin",
                             version=OLD)
    shown = resp.json()["network"]
    assert (shown["bridge"], shown["dhcp_start"], shown["project_id"], shown["vlan"],
            shown["enable_dhcp"], shown["multi_host"], shown["dhcp_server"]) == (
        "nvbr0", "10.0.0.2", None, None, True, False, "10.0.0.1")
    assert shown["created_at"] and shown["deleted"] is False
    _error(await api.request("GET", f"{V}/os-networks/nope"), 404)


async def test_network_create_and_delete(api: Api) -> None:
    body = {"network": {"label": "lab", "cidr": "192.168.7.0/24", "dns1": "8.8.8.8",
                        "mtu": "1400", "multi_host": "true"}}
    _error(await api.request("POST", f"{V}/os-networks", json=body), 403)
    resp = await api.request("POST", f"{V}/os-networks", user="admin", json=body)
    assert resp.status_code == 200, resp.text
    made = resp.json()["network"]
    assert (made["label"], made["cidr"], made["gateway"], made["dns1"], made["mtu"],
            made["multi_host"]) == ("lab", "192.168.7.0/24", "192.168.7.1", "8.8.8.8",
                                    1400, True)
    assert "conflicts with existing cidr (192.168.7.0/24)" in _error(await api.request(
        "POST", f"{V}/os-networks", user="admin", json=body), 409)
    for bad in ({"network": {"cidr": "10.1.0.0/24"}},
                {"network": {"label": "x"}},
                {"network": {"label": "x", "cidr": "10.1.0.0/24", "color": "red"}},
                {"network": {"label": "x", "cidr": "10.1.0.0/24", "gateway": "nope"}}):
        _error(await api.request("POST", f"{V}/os-networks", user="admin", json=bad), 400)
    assert _error(await api.request("POST", f"{V}/os-networks", user="admin", json={
        "network": {"label": "x", "cidr": "10.1.0.0/8"}}), 400).startswith("Network 10.0.0.0/8")
    _error(await api.request("POST", f"{V}/os-networks", user="admin", json={
        "network": {"label": "x", "cidr_v6": "fd00::/64"}}), 400)
    _error(await api.request("DELETE", f"{V}/os-networks/{made['id']}"), 403)
    resp = await api.request("DELETE", f"{V}/os-networks/{made['id']}", user="admin")
    assert resp.status_code == 202
    _error(await api.request("DELETE", f"{V}/os-networks/{made['id']}", user="admin"), 404)


async def test_network_in_use_and_associations(api: Api) -> None:
    await _boot(api)
    (network,) = (await api.request("GET", f"{V}/os-networks")).json()["networks"]
    path = f"{V}/os-networks/{network['id']}"
    assert _error(await api.request("DELETE", path, user="admin"), 409) == (
        f"Network {network['id']} is still in use.")
    resp = await api.request("POST", f"{path}/action", user="admin",
                             json={"associate_host": "net-host"})
    assert resp.status_code == 202
    shown = (await api.request("GET", path, user="admin")).json()["network"]
    assert shown["host"] == "net-host"
    for action in ("disassociate_host", "disassociate_project", "disassociate"):
        resp = await api.request("POST", f"{path}/action", user="admin", json={action: None})
        assert resp.status_code == 202
    assert (await api.request("GET", path, user="admin")).json()["network"]["host"] is None
    _error(await api.request("POST", f"{path}/action", json={"disassociate": None}), 403)
    _error(await api.request("POST", f"{path}/action", user="admin", json={"fly": None}), 400)
    _error(await api.request("POST", f"{V}/os-networks/nope/action", user="admin",
                             json={"disassociate": None}), 404)


async def test_networks_add_needs_vlan_mode(api: Api) -> None:
    # 501 is what Nova answers here; the fixture's client fails every 5xx, so ask
    # with a plain one.
    transport = httpx.ASGITransport(app=api.cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test") as raw:
        resp = await raw.post(f"{V}/os-networks/add", json={"id": None},
                              headers={"X-Auth-Token": await api.token("admin")})
    assert _error(resp, 501) == "The requested functionality is not supported."
    _error(await api.request("POST", f"{V}/os-networks/add", user="admin", json={}), 400)
    _error(await api.request("POST", f"{V}/os-networks/add", json={"id": None}), 403)


# --- floating IPs ---------------------------------------------------------------------


async def test_floating_ip_pools(api: Api) -> None:
    resp = await api.request("GET", f"{V}/os-floating-ip-pools", version=OLD)
    assert resp.status_code == 200
    assert resp.json() == {"floating_ip_pools": [{"name": "public"}]}


async def test_floating_ip_lifecycle(api: Api) -> None:
    resp = await api.request("POST", f"{V}/os-floating-ips")  # no body: the default pool
    assert resp.status_code == 200, resp.text
    first = resp.json()["floating_ip"]
    assert first == {"id": first["id"], "ip": "172.24.4.1", "pool": "public",
                     "fixed_ip": None, "instance_id": None}
    second = (await api.request("POST", f"{V}/os-floating-ips", json={"pool": "public"})
              ).json()["floating_ip"]
    assert second["ip"] == "172.24.4.2"
    assert _error(await api.request("POST", f"{V}/os-floating-ips", json={"pool": "nope"}),
                  404) == "Floating IP pool nope not found."
    _error(await api.request("POST", f"{V}/os-floating-ips", json={"pool": 5}), 400)
    listed = (await api.request("GET", f"{V}/os-floating-ips")).json()["floating_ips"]
    assert [f["ip"] for f in listed] == ["172.24.4.1", "172.24.4.2"]
    shown = await api.request("GET", f"{V}/os-floating-ips/{first['id']}")
    assert shown.json() == {"floating_ip": first}
    assert (await api.request("GET", f"{V}/os-floating-ips", user="admin")).json() == {
        "floating_ips": []}  # the admin's own project holds none
    assert _error(await api.request("GET", f"{V}/os-floating-ips/{first['id']}",
                                    user="admin", headers={"X-Auth-Token": await _alt(api)}),
                  404) == f"Floating IP not found for ID {first['id']}"
    _error(await api.request("GET", f"{V}/os-floating-ips/abc"), 404)
    resp = await api.request("DELETE", f"{V}/os-floating-ips/{first['id']}")
    assert resp.status_code == 202
    _error(await api.request("DELETE", f"{V}/os-floating-ips/{first['id']}"), 404)
    listed = (await api.request("GET", f"{V}/os-floating-ips")).json()["floating_ips"]
    assert [f["ip"] for f in listed] == ["172.24.4.2"]


async def _alt(api: Api) -> str:
    """A token of a member of another project than demo's."""
    identity = api.cloud.services.identity
    if not await identity.list_users(name="alt"):
        project = await identity.create_project({"name": "alt"})
        user = await identity.create_user({"name": "alt", "password": "alt",
                                           "default_project_id": project.id})
        role = await identity.find_role("member")
        assert role is not None
        await identity.grant(user.id, project.id, role.id)
    return await api.token("alt", "alt")


async def test_floating_ip_server_actions(api: Api) -> None:
    server = await _boot(api)
    sid = server["id"]
    ip = (await api.request("POST", f"{V}/os-floating-ips")).json()["floating_ip"]
    resp = await _action(api, sid, {"addFloatingIp": {"address": ip["ip"]}})
    assert resp.status_code == 202, resp.text
    shown = await _show(api, sid)
    (fixed, floating) = shown["addresses"]["private"]
    assert fixed["OS-EXT-IPS:type"] == "fixed" and fixed["version"] == 4
    assert floating == {"version": 4, "addr": ip["ip"], "OS-EXT-IPS:type": "floating",
                        "OS-EXT-IPS-MAC:mac_addr": fixed["OS-EXT-IPS-MAC:mac_addr"]}
    listed = (await api.request("GET", f"{V}/os-floating-ips/{ip['id']}")).json()
    assert listed["floating_ip"]["fixed_ip"] == fixed["addr"]
    assert listed["floating_ip"]["instance_id"] == sid
    resp = await _action(api, sid, {"removeFloatingIp": {"address": ip["ip"]}})
    assert resp.status_code == 202
    assert _error(await _action(api, sid, {"removeFloatingIp": {"address": ip["ip"]}}),
                  409) == f"Floating IP {ip['ip']} is not associated with instance {sid}."
    assert _error(await _action(api, sid, {"addFloatingIp": {
        "address": ip["ip"], "fixed_address": "10.0.0.250"}}), 400) == (
        "Specified fixed address not assigned to instance")
    _error(await _action(api, sid, {"addFloatingIp": {"address": "not-an-ip"}}), 400)
    _error(await _action(api, sid, {"addFloatingIp": {}}), 400)
    _error(await _action(api, sid, {"addFloatingIp": {"address": "198.51.100.9"}}), 404)
    _error(await _action(api, sid, {"addFloatingIp": {"address": "172.24.4.200"}}), 403)
    _error(await _action(api, sid, {"addFloatingIp": {"address": ip["ip"]}},
                         version="2.44"), 404)
    _error(await _action(api, sid, {"removeFloatingIp": {"address": ip["ip"]}},
                         version="2.44"), 404)
    resp = await _action(api, sid, {"addFloatingIp": {"address": ip["ip"],
                                                      "fixed_address": fixed["addr"]}},
                         version="2.43")
    assert resp.status_code == 202
    resp = await api.request("DELETE", f"{V}/os-floating-ips/{ip['id']}")  # disassociates
    assert resp.status_code == 202
    assert len((await _show(api, sid))["addresses"]["private"]) == 1


async def test_floating_ip_needs_a_fixed_ip(api: Api) -> None:
    server = await _boot(api, "bare")
    await api.cloud.services.network.deallocate_for_instance(server["id"])
    ip = (await api.request("POST", f"{V}/os-floating-ips")).json()["floating_ip"]
    assert _error(await _action(api, server["id"], {"addFloatingIp": {"address": ip["ip"]}}),
                  400) == "No fixed IPs associated to instance"


# --- security groups ------------------------------------------------------------------


async def test_security_groups_crud(api: Api) -> None:
    resp = await api.request("GET", f"{V}/os-security-groups")
    assert resp.status_code == 200
    (default,) = resp.json()["security_groups"]
    assert (default["name"], default["description"]) == ("default", "default")
    (rule,) = default["rules"]
    assert rule == {"id": rule["id"], "parent_group_id": default["id"], "ip_protocol": None,
                    "from_port": None, "to_port": None, "ip_range": {},
                    "group": {"name": "default", "tenant_id": default["tenant_id"]}}
    resp = await api.request("POST", f"{V}/os-security-groups", json={
        "security_group": {"name": "web", "description": "web servers"}})
    assert resp.status_code == 200, resp.text
    web = resp.json()["security_group"]
    assert web == {"id": web["id"], "name": "web", "description": "web servers",
                   "tenant_id": default["tenant_id"], "rules": []}
    assert _error(await api.request("POST", f"{V}/os-security-groups", json={
        "security_group": {"name": "web", "description": "again"}}), 400).startswith(
        "Security group web already exists")
    for body, message in (
            (None, "The request body can't be empty"),
            ({"group": {}}, "Missing parameter security_group"),
            ({"security_group": {"description": "d"}},
             "Security group name is not a string or unicode"),
            ({"security_group": {"name": "x"}},
             "Security group description is not a string or unicode"),
            ({"security_group": {"name": "", "description": "d"}},
             "name has a minimum character requirement of 1.")):
        resp = await api.request("POST", f"{V}/os-security-groups", json=body)
        assert _error(resp, 400) == message
    path = f"{V}/os-security-groups/{web['id']}"
    assert (await api.request("GET", path)).json() == {"security_group": web}
    resp = await api.request("PUT", path, json={"security_group": {
        "name": "www", "description": "renamed"}})
    assert resp.status_code == 200 and resp.json()["security_group"]["name"] == "www"
    default_path = f"{V}/os-security-groups/{default['id']}"
    assert _error(await api.request("PUT", default_path, json={"security_group": {
        "name": "x", "description": "y"}}), 400) == "Unable to update system group 'default'"
    assert _error(await api.request("DELETE", default_path), 400) == (
        "Unable to delete system group 'default'")
    # ids are the network API's uuids (as Nova with Neutron); a name is a 404 (the
    # openstack CLI's compute fallback then lists)
    assert uuid.UUID(web["id"]) and uuid.UUID(rule["id"])
    assert _error(await api.request("GET", f"{V}/os-security-groups/www"), 404) == (
        "Security group www not found.")
    missing = str(uuid.uuid4())
    assert _error(await api.request("GET", f"{V}/os-security-groups/{missing}"), 404) == (
        f"Security group {missing} not found.")
    _error(await api.request("GET", path, headers={"X-Auth-Token": await _alt(api)}), 404)
    names = [g["name"] for g in (await api.request("GET", f"{V}/os-security-groups?limit=1"
                                                   )).json()["security_groups"]]
    assert names == ["default"]
    names = [g["name"] for g in (await api.request(
        "GET", f"{V}/os-security-groups?offset=1")).json()["security_groups"]]
    assert names == ["www"]
    everyone = (await api.request("GET", f"{V}/os-security-groups?all_tenants=1",
                                  user="admin")).json()["security_groups"]
    assert {"www", "default"} <= {g["name"] for g in everyone}
    resp = await api.request("DELETE", path)
    assert resp.status_code == 202
    _error(await api.request("DELETE", path), 404)


async def test_security_group_rules(api: Api) -> None:
    web = (await api.request("POST", f"{V}/os-security-groups", json={
        "security_group": {"name": "web", "description": "d"}})).json()["security_group"]
    admins = (await api.request("POST", f"{V}/os-security-groups", json={
        "security_group": {"name": "admins", "description": "d"}})).json()["security_group"]
    rules = f"{V}/os-security-group-rules"
    resp = await api.request("POST", rules, json={"security_group_rule": {
        "parent_group_id": web["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
        "cidr": "0.0.0.0/0"}})
    assert resp.status_code == 200, resp.text
    ssh = resp.json()["security_group_rule"]
    assert ssh == {"id": ssh["id"], "parent_group_id": web["id"], "ip_protocol": "tcp",
                   "from_port": 22, "to_port": 22, "ip_range": {"cidr": "0.0.0.0/0"},
                   "group": {}}
    resp = await api.request("POST", rules, json={"security_group_rule": {
        "parent_group_id": str(web["id"]), "ip_protocol": "tcp", "group_id": admins["id"]}})
    from_group = resp.json()["security_group_rule"]
    assert (from_group["from_port"], from_group["to_port"], from_group["group"]) == (
        1, 65535, {"name": "admins", "tenant_id": web["tenant_id"]})
    assert _error(await api.request("POST", rules, json={"security_group_rule": {
        "parent_group_id": web["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22}}),
        400) == f"This rule already exists in group {web['id']}"
    for rule, message in (
            ({"ip_protocol": "tcp", "from_port": 30, "to_port": 20},
             "Invalid port range 30:20. Former value cannot be greater than the later"),
            ({"ip_protocol": "sctp", "from_port": 1, "to_port": 2},
             "Invalid IP protocol sctp."),
            ({"ip_protocol": "tcp"}, "Not enough parameters to build a valid rule."),
            ({"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "1.2.3.4/99"},
             "1.2.3.4/99 is not a valid IP network.")):
        resp = await api.request("POST", rules, json={"security_group_rule": {
            "parent_group_id": web["id"], **rule}})
        assert _error(resp, 400) == message
    assert _error(await api.request("POST", rules, json={"security_group_rule": {
        "parent_group_id": "web", "ip_protocol": "tcp", "from_port": 1, "to_port": 2}}),
        400) == "Security group id should be uuid"
    for missing in (99999, str(uuid.uuid4())):
        _error(await api.request("POST", rules, json={"security_group_rule": {
            "parent_group_id": missing, "ip_protocol": "tcp", "from_port": 1,
            "to_port": 2}}), 404)
    assert _error(await api.request("POST", rules, json={"security_group_rule": {
        "parent_group_id": web["id"], "ip_protocol": "tcp", "group_id": "admins"}}),
        400) == "Security group id should be uuid"
    _error(await api.request("POST", rules, json={}), 400)
    shown = (await api.request("GET", f"{V}/os-security-groups/{web['id']}")).json()
    assert [r["id"] for r in shown["security_group"]["rules"]] == [ssh["id"],
                                                                    from_group["id"]]
    resp = await api.request("DELETE", f"{rules}/{ssh['id']}")
    assert resp.status_code == 202
    assert _error(await api.request("DELETE", f"{rules}/{ssh['id']}"), 404) == (
        f"Rule ({ssh['id']}) not found")
    _error(await api.request("DELETE", f"{rules}/{from_group['id']}",
                             headers={"X-Auth-Token": await _alt(api)}), 404)
    assert _error(await api.request("DELETE", f"{rules}/x"), 404) == "Rule (x) not found"


async def test_server_security_groups(api: Api) -> None:
    server = await _boot(api)
    sid = server["id"]
    shown = await _show(api, sid)
    assert shown["security_groups"] == [{"name": "default"}]
    await api.request("POST", f"{V}/os-security-groups", json={
        "security_group": {"name": "web", "description": "d"}})
    for version in ("2.1", "2.100"):  # not a proxy: every version
        resp = await _action(api, sid, {"addSecurityGroup": {"name": "web"}}, version=version)
        assert resp.status_code == 202, resp.text
        listed = await api.request("GET", f"{V}/servers/{sid}/os-security-groups",
                                   version=version)
        assert [g["name"] for g in listed.json()["security_groups"]] == ["default", "web"]
        # the network API's ids, which clients look up at /v2.0/security-groups/{id}
        for group in listed.json()["security_groups"]:
            resp = await api.request("GET", f"/network/v2.0/security-groups/{group['id']}")
            assert resp.status_code == 200, resp.text
            assert resp.json()["security_group"]["name"] == group["name"]
        assert [g["name"] for g in (await _show(api, sid))["security_groups"]] == [
            "default", "web"]
        assert _error(await api.request("DELETE", f"{V}/os-security-groups/"
                                        f"{listed.json()['security_groups'][1]['id']}",
                                        version=OLD), 400) == "Security group is still in use"
        assert "is already associated with the instance" in _error(
            await _action(api, sid, {"addSecurityGroup": {"name": "web"}}, version), 400)
        resp = await _action(api, sid, {"removeSecurityGroup": {"name": "web"}},
                             version=version)
        assert resp.status_code == 202
        assert "is not associated with the instance" in _error(
            await _action(api, sid, {"removeSecurityGroup": {"name": "web"}}, version), 400)
    for body, code, message in (
            ({"addSecurityGroup": None}, 400, "Missing parameter dict"),
            ({"addSecurityGroup": {}}, 400, "Security group not specified"),
            ({"addSecurityGroup": {"name": " "}}, 400, "Security group name cannot be empty"),
            ({"addSecurityGroup": {"name": "nope"}}, 404, "Security group nope not found for "
             "project")):
        assert _error(await _action(api, sid, body), code).startswith(message)
    _error(await api.request("GET", f"{V}/servers/{sid}/os-security-groups",
                             headers={"X-Auth-Token": await _alt(api)}), 404)


# --- fixed IPs and addresses ------------------------------------------------------------


async def test_fixed_ips(api: Api) -> None:
    server = await _boot(api, "fixed-vm")
    address = (await _show(api, server["id"]))["addresses"]["private"][0]["addr"]
    path = f"{V}/os-fixed-ips/{address}"
    _error(await api.request("GET", path), 403)
    resp = await api.request("GET", path, user="admin")
    assert resp.json() == {"fixed_ip": {"cidr": "10.0.0.0/24", "address": address,
                                        "hostname": "fixed-vm", "host": "fake-host-1"}}
    resp = await api.request("GET", f"{V}/os-fixed-ips/10.0.0.200", user="admin",
                             version="2.4")
    assert resp.json() == {"fixed_ip": {"cidr": "10.0.0.0/24", "address": "10.0.0.200",
                                        "hostname": None, "host": None, "reserved": False}}
    resp = await api.request("POST", f"{V}/os-fixed-ips/10.0.0.200/action", user="admin",
                             json={"reserve": None})
    assert resp.status_code == 202
    shown = await api.request("GET", f"{V}/os-fixed-ips/10.0.0.200", user="admin",
                              version="2.4")
    assert shown.json()["fixed_ip"]["reserved"] is True
    resp = await api.request("POST", f"{V}/os-fixed-ips/10.0.0.200/action", user="admin",
                             json={"unreserve": None})
    assert resp.status_code == 202
    _error(await api.request("POST", f"{V}/os-fixed-ips/10.0.0.200/action", user="admin",
                             json={"reserve": {}}), 400)
    _error(await api.request("POST", f"{V}/os-fixed-ips/10.0.0.200/action", user="admin",
                             json={"borrow": None}), 400)
    _error(await api.request("POST", f"{V}/os-fixed-ips/10.0.0.200/action",
                             json={"reserve": None}), 403)
    assert _error(await api.request("GET", f"{V}/os-fixed-ips/10.9.9.9", user="admin"),
                  404) == "Fixed IP not found for address 10.9.9.9."
    assert _error(await api.request("GET", f"{V}/os-fixed-ips/nope", user="admin"),
                  400) == "Fixed IP address nope is invalid."


async def test_addresses_in_server_bodies_and_ips(api: Api) -> None:
    one = await _boot(api, "one")
    two = await _boot(api, "two")
    resp = await api.request("GET", f"{V}/servers/detail", version="2.100")
    by_id = {s["id"]: s for s in resp.json()["servers"]}
    first = by_id[one["id"]]["addresses"]["private"]
    second = by_id[two["id"]]["addresses"]["private"]
    assert first[0]["addr"] != second[0]["addr"]
    assert first[0]["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e:")
    assert by_id[one["id"]]["security_groups"] == [{"name": "default"}]
    resp = await api.request("GET", f"{V}/servers/{one['id']}/ips")
    assert resp.json() == {"addresses": {"private": [{"version": 4,
                                                      "addr": first[0]["addr"]}]}}
    resp = await api.request("GET", f"{V}/servers/{one['id']}/ips/private")
    assert resp.json() == {"private": [{"version": 4, "addr": first[0]["addr"]}]}
    assert _error(await api.request("GET", f"{V}/servers/{one['id']}/ips/public"), 404) == (
        "Instance is not a member of specified network")


# --- vlan mode ------------------------------------------------------------------------


@pytest.fixture
async def vlan_api(state_dir: Any) -> Any:
    from novalet.service.allinone import AllInOne
    from tests.functional.conftest import make_conf

    cloud = AllInOne(make_conf(state_dir, network__network_manager="vlan",
                               network__fixed_range="10.0.0.0/16"), in_process_http=True)
    await cloud.start()
    transport = httpx.ASGITransport(app=cloud.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test") as c:
            yield Api(cloud, c)
    finally:
        await cloud.stop()


async def test_vlan_mode_networks(vlan_api: Api) -> None:
    api = vlan_api
    assert (await api.request("GET", f"{V}/os-networks")).json() == {"networks": []}
    server = await _boot(api)
    address = (await _show(api, server["id"]))["addresses"]["private"][0]["addr"]
    assert address == "10.0.0.2"
    (network,) = (await api.request("GET", f"{V}/os-networks", user="admin")).json()["networks"]
    assert (network["vlan"], network["bridge"], network["cidr"]) == (100, "nvbr100",
                                                                     "10.0.0.0/24")
    assert network["project_id"] == server["tenant_id"]
    resp = await api.request("POST", f"{V}/os-networks", user="admin", json={
        "network": {"label": "spare", "cidr": "172.30.0.0/24"}})
    spare = resp.json()["network"]
    assert (spare["vlan"], spare["bridge"], spare["project_id"]) == (101, "nvbr101", None)
    assert _error(await api.request("POST", f"{V}/os-networks", user="admin", json={
        "network": {"label": "dup", "cidr": "172.30.1.0/24", "vlan": 101}}), 409) == (
        "Detected existing vlan with id 101")
    resp = await api.request("POST", f"{V}/os-networks/add", user="admin", json={"id": None})
    assert resp.status_code == 202
    shown = (await api.request("GET", f"{V}/os-networks/{spare['id']}", user="admin")).json()
    assert shown["network"]["project_id"] is not None  # the admin's own project, as Nova
    assert _error(await api.request("POST", f"{V}/os-networks/add", user="admin",
                                    json={"id": "nope"}), 400) == (
        "Network could not be found for uuid nope")
    assert _error(await api.request("DELETE", f"{V}/os-networks/{spare['id']}",
                                    user="admin"), 409) == (
        f"Network {spare['id']} is still in use.")


async def test_boot_on_a_named_network_with_a_named_group(api: Api) -> None:
    """Requested networks and security groups at create reach the server."""
    nets = (await api.request("GET", "/compute/v2.1/os-networks", user="admin",
                              version="2.35")).json()["networks"]
    resp = await api.request("POST", "/compute/v2.1/os-security-groups", version="2.35",
                             json={"security_group": {"name": "web", "description": "w"}})
    assert resp.status_code == 200, resp.text
    server = await boot(api, "netted", version="2.37", wait="ACTIVE",
                        networks=[{"uuid": nets[0]["id"]}], security_groups=[{"name": "web"}])
    assert list(server["addresses"]) == [nets[0]["label"]]
    assert server["security_groups"] == [{"name": "web"}]
    resp = await api.request("POST", "/compute/v2.1/servers", version="2.37", json={
        "server": {"name": "x", "imageRef": server["image"]["id"], "flavorRef": "1",
                   "networks": [{"uuid": "6a0bd0a5-0000-4000-8000-000000000000"}]}})
    assert resp.status_code == 400
    resp = await api.request("POST", "/compute/v2.1/servers", version="2.37", json={
        "server": {"name": "x", "imageRef": server["image"]["id"], "flavorRef": "1",
                   "networks": "auto", "security_groups": [{"name": "nope"}]}})
    assert resp.status_code == 400
