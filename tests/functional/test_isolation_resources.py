"""Cross-project isolation for every resource type: a member of project "other" finds
nothing of project demo's (404, and absent from lists); project-wide admin APIs
answer 403."""

from __future__ import annotations

from typing import Any


from novalet.api.compute import server_actions
from tests.functional.conftest import Api, boot, ensure_image
from tests.functional.test_policy_routes import ACTION_BODIES

C = "/compute/v2.1"
S = f"{C}/servers"
OLD = "2.35"  # the nova-network proxies (security groups, floating IPs) end here


async def _all_404(api: Api, calls: list[tuple[str, str, Any]], version: str = "2.100"
                   ) -> None:
    for method, path, body in calls:
        resp = await api.request(method, path, user="other", json=body, version=version)
        assert resp.status_code == 404, (method, path, resp.status_code, resp.text)


async def test_servers_and_every_action(api: Api, other: str) -> None:
    server = await boot(api, "demo-vm", user="demo")
    sid = server["id"]
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"{S}/{sid}", None), ("PUT", f"{S}/{sid}", {"server": {"name": "x"}}),
        ("DELETE", f"{S}/{sid}", None), ("GET", f"{S}/{sid}/metadata", None),
        ("PUT", f"{S}/{sid}/metadata/k", {"meta": {"k": "v"}}),
        ("GET", f"{S}/{sid}/tags", None), ("PUT", f"{S}/{sid}/tags/t", None),
        ("GET", f"{S}/{sid}/ips", None), ("GET", f"{S}/{sid}/os-interface", None),
        ("GET", f"{S}/{sid}/os-instance-actions", None),
        ("GET", f"{S}/{sid}/os-security-groups", None)]
    bodies = {**ACTION_BODIES, "rebuild": {"imageRef": server["image"]["id"]}}
    calls += [("POST", f"{S}/{sid}/action", {action: bodies.get(action)})
              for action in server_actions.ACTIONS]
    await _all_404(api, calls)
    listed = (await api.request("GET", f"{S}/detail?project_id={server['tenant_id']}",
                                user="other")).json()
    assert listed["servers"] == []
    for query in ("?all_tenants=1", f"?project_id={server['tenant_id']}&all_tenants=1"):
        resp = await api.request("GET", f"{S}/detail{query}", user="other")
        assert resp.status_code == 403, (query, resp.text)  # admin-only, as in Nova
    assert (await api.request("GET", f"{S}/{sid}", user="demo")).json()["server"][
        "status"] == "ACTIVE"


async def test_keypairs(api: Api, other: str) -> None:
    resp = await api.request("POST", f"{C}/os-keypairs", user="demo",
                             json={"keypair": {"name": "demo-key"}})
    assert resp.status_code == 200, resp.text
    demo_user = resp.json()["keypair"]["user_id"]
    await _all_404(api, [("GET", f"{C}/os-keypairs/demo-key", None),
                         ("DELETE", f"{C}/os-keypairs/demo-key", None)])
    assert (await api.request("GET", f"{C}/os-keypairs", user="other")
            ).json()["keypairs"] == []
    for method, path in (("GET", f"{C}/os-keypairs?user_id={demo_user}"),
                         ("GET", f"{C}/os-keypairs/demo-key?user_id={demo_user}"),
                         ("DELETE", f"{C}/os-keypairs/demo-key?user_id={demo_user}")):
        resp = await api.request(method, path, user="other", version="2.10")
        assert resp.status_code == 403, (method, path, resp.text)
    assert (await api.request("GET", f"{C}/os-keypairs/demo-key", user="demo")
            ).status_code == 200


async def test_private_images(api: Api, other: str) -> None:
    resp = await api.request("POST", "/image/v2/images", user="demo", json={
        "name": "demo-private", "disk_format": "raw", "container_format": "bare",
        "visibility": "private"})
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    resp = await api.request("PUT", f"/image/v2/images/{image_id}/file", user="demo",
                             content=b"x" * 512,
                             headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    images = (await api.request("GET", "/image/v2/images", user="other")).json()["images"]
    assert image_id not in [i["id"] for i in images]
    calls: tuple[tuple[str, str, dict[str, Any]], ...] = (
            ("GET", f"/image/v2/images/{image_id}", {}),
            ("GET", f"/image/v2/images/{image_id}/file", {}),
            ("PATCH", f"/image/v2/images/{image_id}", {
                "json": [{"op": "replace", "path": "/name", "value": "mine"}],
                "headers": {"Content-Type": "application/openstack-images-v2.1-json-patch"}}),
            ("DELETE", f"/image/v2/images/{image_id}", {}))
    for method, path, kwargs in calls:
        resp = await api.request(method, path, user="other", **kwargs)
        assert resp.status_code == 404, (method, path, resp.text)
    resp = await api.request("POST", S, user="other", json={"server": {
        "name": "x", "flavorRef": "1", "imageRef": image_id, "networks": "none"}},
        version="2.37")
    assert resp.status_code == 400, resp.text
    assert (await api.request("GET", f"/image/v2/images/{image_id}", user="demo")
            ).json()["name"] == "demo-private"


async def test_private_flavors(api: Api, other: str) -> None:
    resp = await api.request("POST", f"{C}/flavors", user="admin", json={"flavor": {
        "name": "secret", "ram": 128, "vcpus": 1, "disk": 1,
        "os-flavor-access:is_public": False}})
    assert resp.status_code == 200, resp.text
    flavor_id = resp.json()["flavor"]["id"]
    listed = (await api.request("GET", f"{C}/flavors/detail", user="other")).json()
    assert flavor_id not in [f["id"] for f in listed["flavors"]]
    resp = await api.request("GET", f"{C}/flavors/{flavor_id}", user="other")
    assert resp.status_code == 404, resp.text
    image = await ensure_image(api)
    resp = await api.request("POST", S, user="other", version="2.37", json={"server": {
        "name": "x", "flavorRef": flavor_id, "imageRef": image, "networks": "none"}})
    assert resp.status_code == 400, resp.text
    resp = await api.request("POST", f"{C}/flavors/{flavor_id}/action", user="other",
                             json={"addTenantAccess": {"tenant": other}})
    assert resp.status_code == 403, resp.text
    resp = await api.request("POST", f"{C}/flavors/{flavor_id}/action", user="admin",
                             json={"addTenantAccess": {"tenant": other}})
    assert resp.status_code == 200, resp.text
    assert (await api.request("GET", f"{C}/flavors/{flavor_id}", user="other")
            ).status_code == 200


async def test_security_groups(api: Api, other: str) -> None:
    resp = await api.request("POST", f"{C}/os-security-groups", user="demo", version=OLD,
                             json={"security_group": {"name": "web", "description": "w"}})
    assert resp.status_code == 200, resp.text
    gid = resp.json()["security_group"]["id"]
    listed = (await api.request("GET", f"{C}/os-security-groups", user="other",
                                version=OLD)).json()["security_groups"]
    assert gid not in [g["id"] for g in listed]
    await _all_404(api, [
        ("GET", f"{C}/os-security-groups/{gid}", None),
        ("PUT", f"{C}/os-security-groups/{gid}", {"security_group": {
            "name": "mine", "description": "m"}}),
        ("DELETE", f"{C}/os-security-groups/{gid}", None),
        ("POST", f"{C}/os-security-group-rules", {"security_group_rule": {
            "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
            "cidr": "0.0.0.0/0"}})], version=OLD)
    resp = await api.request("GET", f"{C}/os-security-groups/{gid}", user="demo", version=OLD)
    assert resp.json()["security_group"]["name"] == "web"
    assert resp.json()["security_group"]["rules"] == []


async def test_floating_ips(api: Api, other: str) -> None:
    resp = await api.request("POST", f"{C}/os-floating-ips", user="demo", version=OLD,
                             json={})
    assert resp.status_code == 200, resp.text
    fip = resp.json()["floating_ip"]
    listed = (await api.request("GET", f"{C}/os-floating-ips", user="other",
                                version=OLD)).json()["floating_ips"]
    assert fip["id"] not in [f["id"] for f in listed]
    await _all_404(api, [("GET", f"{C}/os-floating-ips/{fip['id']}", None),
                         ("DELETE", f"{C}/os-floating-ips/{fip['id']}", None)], version=OLD)
    theirs = await boot(api, "other-vm", user="other")
    resp = await api.request("POST", f"{S}/{theirs['id']}/action", user="other",
                             version=OLD, json={"addFloatingIp": {"address": fip["ip"]}})
    assert resp.status_code in (400, 404), resp.text
    assert (await api.request("GET", f"{C}/os-floating-ips/{fip['id']}", user="demo",
                              version=OLD)).json()["floating_ip"]["instance_id"] is None


async def test_server_groups(api: Api, other: str) -> None:
    resp = await api.request("POST", f"{C}/os-server-groups", user="demo", version="2.64",
                             json={"server_group": {"name": "g", "policy": "affinity"}})
    assert resp.status_code == 200, resp.text
    gid = resp.json()["server_group"]["id"]
    listed = (await api.request("GET", f"{C}/os-server-groups", user="other",
                                version="2.64")).json()["server_groups"]
    assert gid not in [g["id"] for g in listed]
    listed = (await api.request("GET", f"{C}/os-server-groups?all_projects=1", user="other",
                                version="2.64")).json()["server_groups"]
    assert gid not in [g["id"] for g in listed]
    await _all_404(api, [("GET", f"{C}/os-server-groups/{gid}", None),
                         ("DELETE", f"{C}/os-server-groups/{gid}", None)], version="2.64")


async def test_quotas_of_another_project(api: Api, other: str) -> None:
    (demo,) = await api.cloud.services.identity.list_projects(name="demo")
    for method, path, body in (
            ("GET", f"{C}/os-quota-sets/{demo.id}", None),
            ("GET", f"{C}/os-quota-sets/{demo.id}/detail", None),
            ("PUT", f"{C}/os-quota-sets/{demo.id}", {"quota_set": {"instances": 100}}),
            ("DELETE", f"{C}/os-quota-sets/{demo.id}", None),
            ("PUT", f"{C}/os-quota-sets/{other}", {"quota_set": {"instances": 100}})):
        resp = await api.request(method, path, user="other", json=body)
        assert resp.status_code == 403, (method, path, resp.text)
    assert (await api.request("GET", f"{C}/os-quota-sets/{other}", user="other")
            ).status_code == 200
