"""Reproducer: with the network API in the catalog, python-openstackclient finds a
security group through it and sends the compute API the group's Neutron id (server
create --security-group, server add/remove security group). Nova over Neutron takes
a name or an id there; we took names only (400 "Security group <id> not found")."""

from __future__ import annotations

from tests.functional.conftest import Api, boot, ensure_image
from tests.functional.test_network_api_security_groups import group

V = "/compute/v2.1"


async def _group_names(api: Api, server_id: str) -> list[str]:
    resp = await api.request("GET", f"{V}/servers/{server_id}/os-security-groups")
    assert resp.status_code == 200, resp.text
    return sorted(g["name"] for g in resp.json()["security_groups"])


async def test_boot_and_server_actions_take_a_groups_neutron_id(api: Api) -> None:
    web = await group(api, "web-by-id")
    default = (await api.request("GET", "/network/v2.0/security-groups?name=default")
               ).json()["security_groups"][0]
    # the default group named twice, by name and by id, is joined once
    server = await boot(api, security_groups=[{"name": web["id"]}, {"name": "default"},
                                              {"name": default["id"]}])
    assert await _group_names(api, server["id"]) == ["default", "web-by-id"]
    action = f"{V}/servers/{server['id']}/action"
    resp = await api.request("POST", action, json={"removeSecurityGroup": {"name": web["id"]}})
    assert resp.status_code == 202, resp.text
    assert await _group_names(api, server["id"]) == ["default"]
    resp = await api.request("POST", action, json={"addSecurityGroup": {"name": web["id"]}})
    assert resp.status_code == 202, resp.text
    assert await _group_names(api, server["id"]) == ["default", "web-by-id"]


async def test_another_projects_group_id_is_not_found(api: Api) -> None:
    theirs = await group(api, "theirs", user="admin")
    resp = await api.request("POST", f"{V}/servers", version="2.100", json={"server": {
        "name": "x", "imageRef": await ensure_image(api), "flavorRef": "1",
        "networks": "none", "security_groups": [{"name": theirs["id"]}]}})
    assert resp.status_code == 400 and theirs["id"] in resp.text, resp.text
