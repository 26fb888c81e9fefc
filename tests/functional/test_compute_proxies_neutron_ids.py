"""Reproducers from Tempest's compute tests run with Neutron in the catalog: they
give the nova-network proxies what Nova over Neutron takes. A floating IP pool named
by its external network's id, a rule's parent group by its Neutron id (unknown: 404),
a group name kept as given, blanks and all, and a boot on one network twice (a NIC
each)."""

from __future__ import annotations

import uuid

from tests.functional.conftest import Api, boot
from tests.functional.test_network_api_security_groups import group

V = "/compute/v2.1"


async def test_a_pool_named_by_its_external_networks_id(api: Api) -> None:
    resp = await api.request("GET", "/network/v2.0/networks?name=public&router:external=true")
    (public,) = resp.json()["networks"]
    resp = await api.request("POST", f"{V}/os-floating-ips", json={"pool": public["id"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["floating_ip"]["pool"] == "public"
    private = (await api.request("GET", "/network/v2.0/networks?name=private")
               ).json()["networks"][0]
    for pool in (private["id"], str(uuid.uuid4())):  # not external; unknown
        resp = await api.request("POST", f"{V}/os-floating-ips", json={"pool": pool})
        assert resp.status_code == 404 and pool in resp.text, resp.text


async def test_a_rules_parent_group_by_its_neutron_id(api: Api) -> None:
    web = await group(api, "proxy-web")
    body = {"ip_protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "10.0.0.0/8"}
    resp = await api.request("POST", f"{V}/os-security-group-rules", json={
        "security_group_rule": {"parent_group_id": web["id"], **body}})
    assert resp.status_code == 200, resp.text
    shown = (await api.request("GET", f"/network/v2.0/security-groups/{web['id']}")).json()
    assert [r["port_range_min"] for r in shown["security_group"]["security_group_rules"]
            if r["direction"] == "ingress"] == [80]
    theirs = await group(api, "proxy-theirs", user="admin")
    for parent in (str(uuid.uuid4()), theirs["id"]):
        resp = await api.request("POST", f"{V}/os-security-group-rules", json={
            "security_group_rule": {"parent_group_id": parent, **body}})
        assert resp.status_code == 404, resp.text
    resp = await api.request("POST", f"{V}/os-security-group-rules", json={
        "security_group_rule": {"parent_group_id": "web", **body}})
    assert resp.status_code == 400, resp.text


async def test_a_group_name_is_kept_as_given(api: Api) -> None:
    resp = await api.request("POST", f"{V}/os-security-groups", json={"security_group": {
        "name": " spaced name ", "description": " d "}})
    assert resp.status_code == 200, resp.text
    made = resp.json()["security_group"]
    assert (made["name"], made["description"]) == (" spaced name ", " d ")
    resp = await api.request("POST", f"{V}/os-security-groups", json={"security_group": {
        "name": "   ", "description": "d"}})
    assert resp.status_code == 400, resp.text
    resp = await api.request("POST", f"{V}/os-security-groups", json={"security_group": {
        "name": "x" * 255 + " ", "description": "d"}})
    assert resp.status_code == 400, resp.text


async def test_a_boot_on_one_network_twice_gets_a_nic_each(api: Api) -> None:
    private = (await api.request("GET", "/network/v2.0/networks?name=private")
               ).json()["networks"][0]["id"]
    server = await boot(api, networks=[{"uuid": private}, {"uuid": private}])
    addresses = (await api.request("GET", f"{V}/servers/{server['id']}/ips")).json()
    assert len({a["addr"] for a in addresses["addresses"]["private"]}) == 2
    resp = await api.request("POST", f"{V}/servers", version="2.100", json={"server": {
        "name": "x", "imageRef": server["image"]["id"], "flavorRef": "1", "networks": [
            {"uuid": private, "fixed_ip": "10.0.0.200"},
            {"uuid": private, "fixed_ip": "10.0.0.200"}]}})
    assert resp.status_code == 400 and "10.0.0.200" in resp.text, resp.text


async def test_tenant_networks_list_and_show(api: Api) -> None:
    """os-tenant-networks (Tempest's test_list_show_tenant_networks): the networks the
    project may boot on, short shape, gone from 2.36 like the other proxies."""
    resp = await api.request("GET", f"{V}/os-tenant-networks", version="2.1")
    assert resp.status_code == 200, resp.text
    listed = resp.json()["networks"]
    assert [(n["label"], n["cidr"]) for n in listed] == [("private", "10.0.0.0/24")]
    assert set(listed[0]) == {"id", "label", "cidr"}
    resp = await api.request("GET", f"{V}/os-tenant-networks/{listed[0]['id']}", version="2.1")
    assert resp.status_code == 200 and resp.json()["network"] == listed[0], resp.text
    theirs = await api.request("POST", "/network/v2.0/networks", user="admin",
                               json={"network": {"name": "admins"}})
    resp = await api.request("GET", f"{V}/os-tenant-networks/{theirs.json()['network']['id']}",
                             version="2.1")
    assert resp.status_code == 404, resp.text
    for path in ("/os-tenant-networks", f"/os-tenant-networks/{listed[0]['id']}"):
        assert (await api.request("GET", V + path, version="2.36")).status_code == 404


async def test_a_second_floating_ip_of_a_pool_for_one_fixed_ip_is_a_400(api: Api) -> None:
    """One floating IP per fixed IP and external network, through either face."""
    server = await boot(api, networks="auto")
    action = f"{V}/servers/{server['id']}/action"
    first, second = [(await api.request("POST", f"{V}/os-floating-ips", json={})
                      ).json()["floating_ip"]["ip"] for _ in range(2)]
    resp = await api.request("POST", action, json={"addFloatingIp": {"address": first}})
    assert resp.status_code == 202, resp.text
    resp = await api.request("POST", action, json={"addFloatingIp": {"address": second}})
    assert resp.status_code == 400 and first in resp.text, resp.text
    resp = await api.request("POST", action, json={"addFloatingIp": {"address": first}})
    assert resp.status_code == 202, resp.text  # again: nothing changes
