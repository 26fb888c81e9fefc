"""/network/v2.0/security-groups and /security-group-rules over HTTP: Neutron's
shapes, the default group, bulk rules (all or none), Neutron's errors, scope (another
project's 404, a reader's 403), list filters, and the compute API's os-security-groups
showing the same rows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.conftest import Api, boot, delete_server
from tests.functional.test_network_api_v2 import N, neutron_error
from tests.functional.test_policy_roles import make_user

SG, SGR = f"{N}/security-groups", f"{N}/security-group-rules"
GROUP = {"id", "name", "description", "tenant_id", "project_id", "stateful",
         "security_group_rules", "created_at", "updated_at", "tags"}
RULE = {"id", "security_group_id", "direction", "ethertype", "protocol", "port_range_min",
        "port_range_max", "remote_ip_prefix", "remote_group_id", "description", "tenant_id",
        "project_id", "created_at", "updated_at"}
OS = "/compute/v2.1/os-security-groups"


async def group(api: Api, name: str, user: str = "demo", **attrs: Any) -> dict[str, Any]:
    resp = await api.request("POST", SG, user=user, json={"security_group": {
        "name": name, **attrs}})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["security_group"])


async def rule(api: Api, group_id: str, user: str = "demo", **attrs: Any) -> dict[str, Any]:
    resp = await api.request("POST", SGR, user=user, json={"security_group_rule": {
        "security_group_id": group_id, "direction": "ingress", **attrs}})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["security_group_rule"])


async def test_the_default_group_appears_on_first_list(api: Api) -> None:
    groups = (await api.request("GET", SG)).json()["security_groups"]
    (default,) = [g for g in groups if g["name"] == "default"]
    assert set(default) == GROUP and default["stateful"] is True
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"])
             for r in default["security_group_rules"]}
    assert ("egress", "IPv4", None) in rules and ("ingress", "IPv4", default["id"]) in rules
    resp = await api.request("DELETE", f"{SG}/{default['id']}")
    neutron_error(resp, 409, "SecurityGroupCannotRemoveDefault")
    resp = await api.request("PUT", f"{SG}/{default['id']}",
                             json={"security_group": {"name": "x"}})
    neutron_error(resp, 409, "SecurityGroupCannotUpdateDefault")
    resp = await api.request("POST", SG, json={"security_group": {"name": "default"}})
    neutron_error(resp, 409, "SecurityGroupDefaultAlreadyExists")


async def test_groups_and_rules_crud(api: Api) -> None:
    web = await group(api, "web", description="front")
    assert set(web) == GROUP and web["description"] == "front"
    assert {(r["direction"], r["ethertype"]) for r in web["security_group_rules"]} == {
        ("egress", "IPv4"), ("egress", "IPv6")}
    ssh = await rule(api, web["id"], protocol="tcp", port_range_min=22, port_range_max=22,
                     remote_ip_prefix="10.0.0.5/24", description="ssh")
    assert set(ssh) == RULE
    assert (ssh["protocol"], ssh["port_range_min"], ssh["remote_ip_prefix"], ssh["ethertype"]
            ) == ("tcp", 22, "10.0.0.0/24", "IPv4")
    assert (await api.request("GET", f"{SGR}/{ssh['id']}")).json()["security_group_rule"] == ssh
    shown = (await api.request("GET", f"{SG}/{web['id']}")).json()["security_group"]
    assert ssh in shown["security_group_rules"]
    resp = await api.request("GET", f"{SG}/{web['id']}?fields=name&fields=id")
    assert resp.json()["security_group"] == {"name": "web", "id": web["id"]}

    resp = await api.request("PUT", f"{SG}/{web['id']}", json={"security_group": {
        "name": "www", "description": "renamed"}})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["security_group"]["name"],
            resp.json()["security_group"]["description"]) == ("www", "renamed")
    resp = await api.request("POST", SGR, json={"security_group_rule": {
        "security_group_id": web["id"], "direction": "ingress", "protocol": "6",
        "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/24"}})
    assert ssh["id"] in neutron_error(resp, 409, "SecurityGroupRuleExists")

    assert (await api.request("DELETE", f"{SGR}/{ssh['id']}")).status_code == 204
    neutron_error(await api.request("GET", f"{SGR}/{ssh['id']}"), 404,
                  "SecurityGroupRuleNotFound")
    assert (await api.request("DELETE", f"{SG}/{web['id']}")).status_code == 204
    neutron_error(await api.request("GET", f"{SG}/{web['id']}"), 404, "SecurityGroupNotFound")


async def test_bulk_rules_are_all_or_none(api: Api) -> None:
    web = await group(api, "bulk")
    resp = await api.request("POST", SGR, json={"security_group_rules": [
        {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp",
         "port_range_min": 80, "port_range_max": 80},
        {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp",
         "port_range_min": 443, "port_range_max": 80}]})
    neutron_error(resp, 400, "SecurityGroupInvalidPortRange")
    shown = (await api.request("GET", f"{SG}/{web['id']}")).json()["security_group"]
    assert [r for r in shown["security_group_rules"] if r["direction"] == "ingress"] == []
    resp = await api.request("POST", SGR, json={"security_group_rules": [
        {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp",
         "port_range_min": 80, "port_range_max": 80},
        {"security_group_id": web["id"], "direction": "ingress", "protocol": "icmp"}]})
    assert resp.status_code == 201, resp.text
    assert [r["protocol"] for r in resp.json()["security_group_rules"]] == ["tcp", "icmp"]
    neutron_error(await api.request("POST", SGR, json={"security_group_rules": []}),
                  400, "HTTPBadRequest")


@pytest.mark.parametrize(("path", "body", "type_name", "words"), [
    (SG, {"group": {}}, "HTTPBadRequest", "Unable to find 'security_group'"),
    (SG, {"security_group": {"name": "a", "color": "red"}}, "HTTPBadRequest",
     "Unrecognized attribute(s) 'color'"),
    (SG, {"security_group": {"name": 5}}, "HTTPBadRequest", "Invalid input for name"),
    (SG, {"security_group": {"name": "a", "stateful": "maybe"}}, "HTTPBadRequest",
     "cannot be converted to boolean"),
    (SG, {"security_group": {"name": "a", "stateful": False}}, "BadRequest", "Stateless"),
    (SG, {"security_group": {"id": "x"}}, "HTTPBadRequest", "not allowed in POST"),
    (SGR, {"security_group_rule": {"direction": "ingress"}}, "HTTPBadRequest",
     "'security_group_id' not specified"),
    (SGR, {"security_group_rule": {"security_group_id": "G", "direction": "sideways"}},
     "InvalidInput", "direction sideways"),
    (SGR, {"security_group_rule": {"security_group_id": "G", "direction": "ingress",
                                   "protocol": "tcp", "port_range_min": "x",
                                   "port_range_max": 3}},
     "SecurityGroupInvalidPortValue", "Invalid value for port x"),
    (SGR, {"security_group_rule": {"security_group_id": "G", "direction": "ingress",
                                   "port_range_min": 22}},
     "SecurityGroupProtocolRequiredWithPorts", "protocol"),
    (SGR, {"security_group_rule": {"security_group_id": "G", "direction": "ingress",
                                   "protocol": "bogus"}},
     "SecurityGroupRuleInvalidProtocol", "bogus"),
    (SGR, {"security_group_rule": {"security_group_id": "G", "direction": "ingress",
                                   "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}},
     "SecurityGroupRuleParameterConflict", "IPv6"),
    (SGR, {"security_group_rule": {"security_group_id": "G", "direction": "ingress",
                                   "shape": "round"}},
     "HTTPBadRequest", "Unrecognized attribute(s) 'shape'"),
])
async def test_bad_bodies_are_neutron_400s(api: Api, path: str, body: dict[str, Any],
                                           type_name: str, words: str) -> None:
    target = await group(api, "target")
    inner = body.get("security_group_rule")
    if isinstance(inner, dict) and inner.get("security_group_id") == "G":
        inner["security_group_id"] = target["id"]
    resp = await api.request("POST", path, json=body)
    assert words in neutron_error(resp, 400, type_name)


async def test_list_filters(api: Api) -> None:
    web, db = await group(api, "web"), await group(api, "db")
    await rule(api, web["id"], protocol="tcp", port_range_min=80, port_range_max=80)
    mysql = await rule(api, db["id"], protocol="tcp", port_range_min=3306,
                       port_range_max=3306)
    resp = await api.request("GET", f"{SG}?name=db&fields=id")
    assert resp.json()["security_groups"] == [{"id": db["id"]}]
    resp = await api.request("GET", f"{SGR}?port_range_min=3306")
    assert [r["id"] for r in resp.json()["security_group_rules"]] == [mysql["id"]]
    resp = await api.request("GET", f"{SGR}?security_group_id={db['id']}&direction=ingress")
    assert [r["id"] for r in resp.json()["security_group_rules"]] == [mysql["id"]]
    neutron_error(await api.request("GET", f"{SGR}?port_range_min=x"), 400, "BadRequest")


async def test_another_project_sees_404_and_a_reader_403(api: Api, other: str) -> None:
    web = await group(api, "mine")
    ssh = await rule(api, web["id"], protocol="tcp", port_range_min=22, port_range_max=22)
    for method, url in (("GET", f"{SG}/{web['id']}"), ("PUT", f"{SG}/{web['id']}"),
                        ("DELETE", f"{SG}/{web['id']}")):
        resp = await api.request(method, url, user="other",
                                 json={"security_group": {"name": "x"}})
        neutron_error(resp, 404, "SecurityGroupNotFound")
    for method in ("GET", "DELETE"):
        resp = await api.request(method, f"{SGR}/{ssh['id']}", user="other")
        neutron_error(resp, 404, "SecurityGroupRuleNotFound")
    resp = await api.request("POST", SGR, user="other", json={"security_group_rule": {
        "security_group_id": web["id"], "direction": "ingress"}})
    neutron_error(resp, 404, "SecurityGroupNotFound")
    listed = (await api.request("GET", SGR, user="other")).json()["security_group_rules"]
    assert ssh["id"] not in [r["id"] for r in listed]
    resp = await api.request("POST", SG, json={"security_group": {"name": "x",
                                                                  "tenant_id": other}})
    assert "requires admin" in neutron_error(resp, 400, "HTTPBadRequest")
    theirs = await group(api, "theirs", user="admin", project_id=other)
    assert theirs["tenant_id"] == other
    resp = await api.request("POST", SGR, user="admin", json={"security_group_rule": {
        "security_group_id": theirs["id"], "direction": "ingress", "project_id": "demo-x"}})
    assert "is not the project of security group" in neutron_error(resp, 400,
                                                                   "HTTPBadRequest")
    made = await rule(api, theirs["id"], user="admin", tenant_id=other, protocol="udp")
    assert made["project_id"] == other

    await make_user(api, "reader", "reader")
    assert (await api.request("GET", f"{SG}/{web['id']}", user="reader")).status_code == 200
    resp = await api.request("POST", SG, user="reader", json={"security_group": {"name": "r"}})
    assert "create_security_group" in neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await api.request("DELETE", f"{SGR}/{ssh['id']}", user="reader")
    neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await api.request("POST", SGR, user="reader", json={"security_group_rule": {
        "security_group_id": web["id"], "direction": "egress", "protocol": "udp"}})
    neutron_error(resp, 403, "PolicyNotAuthorized")


async def test_a_group_a_server_is_in_is_in_use(api: Api) -> None:
    web = await group(api, "busy")
    # named by its id, as the openstack CLI does with the network API in the catalog
    server = await boot(api, security_groups=[{"name": web["id"]}])
    # what openstacksdk's fetch_server_security_groups reads: the network API's ids
    resp = await api.request("GET", f"/compute/v2.1/servers/{server['id']}/os-security-groups")
    assert [g["id"] for g in resp.json()["security_groups"]] == [web["id"]]
    action = f"/compute/v2.1/servers/{server['id']}/action"
    for body in ({"removeSecurityGroup": {"name": web["id"]}},
                 {"addSecurityGroup": {"name": web["id"]}}):
        assert (await api.request("POST", action, json=body)).status_code == 202
    resp = await api.request("DELETE", f"{SG}/{web['id']}")
    assert web["id"] in neutron_error(resp, 409, "SecurityGroupInUse")
    await delete_server(api, server["id"])
    assert (await api.request("DELETE", f"{SG}/{web['id']}")).status_code == 204


async def test_a_boot_and_the_server_actions_take_a_group_by_its_id(api: Api, other: str
                                                                  ) -> None:
    """What `openstack server create --security-group NAME` sends once the network API
    is in the catalog: the client resolves the name to the id."""
    web = await group(api, "by-id")
    server = await boot(api, security_groups=[{"name": web["id"]}, {"name": "by-id"}])
    groups = f"/compute/v2.1/servers/{server['id']}/os-security-groups"
    listed = (await api.request("GET", groups)).json()["security_groups"]
    assert [g["name"] for g in listed] == ["by-id"]
    action = f"/compute/v2.1/servers/{server['id']}/action"
    resp = await api.request("POST", action, json={"removeSecurityGroup": {"name": web["id"]}})
    assert resp.status_code == 202, resp.text
    assert (await api.request("GET", groups)).json()["security_groups"] == []
    resp = await api.request("POST", action, json={"addSecurityGroup": {"name": web["id"]}})
    assert resp.status_code == 202, resp.text
    assert [g["name"] for g in (await api.request("GET", groups)).json()[
        "security_groups"]] == ["by-id"]
    theirs = await group(api, "not-yours", user="other")
    resp = await api.request("POST", "/compute/v2.1/servers", version="2.100", json={
        "server": {"name": "x", "imageRef": server["image"]["id"], "flavorRef": "1",
        "networks": "none", "security_groups": [{"name": theirs["id"]}]}})
    assert resp.status_code == 400 and theirs["id"] in resp.text, resp.text
    await delete_server(api, server["id"])


async def test_both_faces_show_the_same_groups_and_rules(api: Api) -> None:
    web = await group(api, "both")
    ssh = await rule(api, web["id"], protocol="tcp", port_range_min=22, port_range_max=22,
                     remote_ip_prefix="0.0.0.0/0")
    proxied = [g for g in (await api.request("GET", OS, version="2.1")).json()[
        "security_groups"] if g["name"] == "both"]
    assert len(proxied) == 1
    assert [(r["ip_protocol"], r["from_port"], r["to_port"], r["ip_range"]["cidr"])
            for r in proxied[0]["rules"]] == [("tcp", 22, 22, "0.0.0.0/0")]
    # one id per group and rule on both faces (Nova with Neutron shows Neutron's)
    assert proxied[0]["id"] == web["id"]
    assert [(r["id"], r["parent_group_id"]) for r in proxied[0]["rules"]] == [
        (ssh["id"], web["id"])]
    assert (await api.request("GET", f"{OS}/{web['id']}", version="2.1")).json()[
        "security_group"] == proxied[0]

    resp = await api.request("POST", OS, version="2.1", json={"security_group": {
        "name": "nova-made", "description": "from the compute API"}})
    assert resp.status_code == 200, resp.text
    nova_id = resp.json()["security_group"]["id"]
    resp = await api.request("POST", "/compute/v2.1/os-security-group-rules", version="2.1",
                             json={"security_group_rule": {
                                 "parent_group_id": nova_id, "ip_protocol": "udp",
                                 "from_port": 53, "to_port": 53, "cidr": "10.0.0.0/8"}})
    assert resp.status_code == 200, resp.text
    nova_rule = resp.json()["security_group_rule"]
    (made,) = (await api.request("GET", f"{SG}?name=nova-made")).json()["security_groups"]
    assert made["description"] == "from the compute API"
    assert (made["id"], nova_rule["parent_group_id"]) == (nova_id, nova_id)
    shown = (await api.request("GET", f"{SGR}/{nova_rule['id']}")).json()["security_group_rule"]
    assert (shown["security_group_id"], shown["port_range_min"]) == (nova_id, 53)
    # a rule named by the network API's id is deleted through the compute API
    resp = await api.request("DELETE", f"/compute/v2.1/os-security-group-rules/{ssh['id']}",
                             version="2.1")
    assert resp.status_code == 202, resp.text
    assert (await api.request("GET", f"{SGR}/{ssh['id']}")).status_code == 404
    assert [(r["direction"], r["protocol"], r["port_range_min"], r["remote_ip_prefix"])
            for r in made["security_group_rules"] if r["direction"] == "ingress"] == [
        ("ingress", "udp", 53, "10.0.0.0/8")]


async def test_both_faces_resolve_a_group_and_rule_id_alike(api: Api, other: str) -> None:
    """Review finding 6: one resolver: the network API takes a uuid in any spelling
    (upper case, braces) as the compute API does, and another project's stays 404."""
    web = await group(api, "web")
    made = await rule(api, web["id"], protocol="tcp", port_range_min=22, port_range_max=22)
    for spelling in (web["id"].upper(), "{" + web["id"] + "}"):
        resp = await api.request("GET", f"{SG}/{spelling}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["security_group"]["id"] == web["id"]
        resp = await api.request("GET", f"{OS}/{spelling}")
        assert resp.status_code == 200 and resp.json()["security_group"]["id"] == web["id"]
    resp = await api.request("GET", f"{SGR}/{made['id'].upper()}")
    assert resp.status_code == 200 and resp.json()["security_group_rule"]["id"] == made["id"]
    resp = await api.request("GET", f"{SG}/{web['id'].upper()}", user="other")
    neutron_error(resp, 404, "SecurityGroupNotFound")
    resp = await api.request("GET", f"{SGR}/{made['id'].upper()}", user="other")
    neutron_error(resp, 404, "SecurityGroupRuleNotFound")
    neutron_error(await api.request("GET", f"{SG}/not-a-uuid"), 404, "SecurityGroupNotFound")
    resp = await api.request("DELETE", f"{SGR}/{made['id'].upper()}")
    assert resp.status_code == 204, resp.text
    resp = await api.request("DELETE", f"{SG}/{web['id'].upper()}")
    assert resp.status_code == 204, resp.text


async def test_an_admin_deleted_default_group_comes_back(api: Api) -> None:
    """The network face's reads go through the compute face's default-group memo:
    deleting the default group (admin) makes the next read make it again."""
    (default,) = [g for g in (await api.request("GET", SG)).json()["security_groups"]
                  if g["name"] == "default"]
    resp = await api.request("DELETE", f"{SG}/{default['id']}", user="admin")
    assert resp.status_code == 204, resp.text
    again = [g for g in (await api.request("GET", SG)).json()["security_groups"]
             if g["name"] == "default"]
    assert len(again) == 1 and again[0]["id"] != default["id"]
