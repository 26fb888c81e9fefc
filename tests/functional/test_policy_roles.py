"""Roles through the API: a reader reads, a member acts in their project, and
policy.yaml overrides the defaults while the cloud runs."""

from __future__ import annotations

import os
from typing import Any

from tests.functional.conftest import Api, boot

C = "/compute/v2.1"
S = f"{C}/servers"


async def make_user(api: Api, name: str, role: str, project: str = "demo") -> str:
    """A user `name` (password `name`) holding only `role` on `project`."""
    async def one(kind: str, query: str) -> str:
        resp = await api.request("GET", f"/identity/v3/{kind}?name={query}", user="admin")
        return str(resp.json()[kind][0]["id"])

    resp = await api.request("POST", "/identity/v3/users", user="admin", json={"user": {
        "name": name, "password": name, "domain_id": "default"}})
    assert resp.status_code == 201, resp.text
    user_id = str(resp.json()["user"]["id"])
    project_id, role_id = await one("projects", project), await one("roles", role)
    resp = await api.request(
        "PUT", f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
        user="admin")
    assert resp.status_code == 204, resp.text
    # api.request(user=name) then acts with a token scoped to `project`.
    api._tokens[(name, name)] = await api.token(name, project)
    return user_id


def _forbidden(resp: Any, action: str) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json()["forbidden"]["message"] == (
        f"Policy doesn't allow {action} to be performed.")


async def test_a_reader_reads_but_changes_nothing(api: Api) -> None:
    server = await boot(api, "readable", user="demo")
    sid = server["id"]
    await make_user(api, "reader", "reader")
    for path in (S, f"{S}/detail", f"{S}/{sid}", f"{S}/{sid}/metadata", f"{S}/{sid}/ips",
                 f"{S}/{sid}/os-instance-actions", f"{S}/{sid}/tags",
                 f"{S}/{sid}/os-security-groups", f"{C}/flavors", f"{C}/flavors/detail",
                 f"{C}/flavors/1", f"{C}/flavors/1/os-extra_specs", f"{C}/os-keypairs",
                 f"{C}/limits", f"{C}/os-availability-zone", f"{C}/os-security-groups",
                 f"{C}/os-floating-ips", f"{C}/os-floating-ip-pools", f"{C}/os-networks",
                 "/image/v2/images"):
        # nova-network proxies (security groups, floating IPs, networks) end at 2.35
        resp = await api.request("GET", path, user="reader", version="2.35")
        assert resp.status_code == 200, (path, resp.text)
    assert sid in [s["id"] for s in (await api.request("GET", S, user="reader")).json()[
        "servers"]]

    writes: list[tuple[str, str, Any, str]] = [
        ("POST", S, {"server": {"name": "x", "flavorRef": "1", "imageRef": server[
            "image"]["id"] if server["image"] else "x", "networks": "none"}},
         "os_compute_api:servers:create"),
        ("PUT", f"{S}/{sid}", {"server": {"name": "renamed"}}, "os_compute_api:servers:update"),
        ("DELETE", f"{S}/{sid}", None, "os_compute_api:servers:delete"),
        ("POST", f"{S}/{sid}/action", {"reboot": {"type": "SOFT"}},
         "os_compute_api:servers:reboot"),
        ("POST", f"{S}/{sid}/action", {"os-stop": None}, "os_compute_api:servers:stop"),
        ("POST", f"{S}/{sid}/action", {"pause": None}, "os_compute_api:os-pause-server:pause"),
        ("POST", f"{S}/{sid}/action", {"lock": None}, "os_compute_api:os-lock-server:lock"),
        ("POST", f"{S}/{sid}/action", {"createImage": {"name": "snap"}},
         "os_compute_api:servers:create_image"),
        ("POST", f"{S}/{sid}/action", {"os-getConsoleOutput": {}},
         "os_compute_api:os-console-output"),
        ("POST", f"{S}/{sid}/metadata", {"metadata": {"a": "b"}},
         "os_compute_api:server-metadata:update"),
        ("PUT", f"{S}/{sid}/tags/t1", None, "os_compute_api:os-server-tags:update"),
        ("POST", f"{C}/os-security-groups", {"security_group": {
            "name": "sg", "description": "d"}}, "os_compute_api:os-security-groups:create"),
        ("POST", f"{C}/os-floating-ips", {}, "os_compute_api:os-floating-ips:create"),
    ]
    for method, path, body, action in writes:
        version = "2.35" if "/os-" in path and "/servers" not in path else "2.100"
        resp = await api.request(method, path, user="reader", json=body, version=version)
        assert resp.status_code == 403, (method, path, body, resp.text)
        _forbidden(resp, action)
    resp = await api.request("POST", "/image/v2/images", user="reader", json={
        "name": "mine", "disk_format": "raw", "container_format": "bare"})
    assert resp.status_code == 403, resp.text
    image_id = server["image"]["id"]
    resp = await api.request("DELETE", f"/image/v2/images/{image_id}", user="reader")
    assert resp.status_code in (403, 404), resp.text
    server_now = (await api.request("GET", f"{S}/{sid}", user="demo")).json()["server"]
    assert server_now["name"] == "readable" and server_now["status"] == "ACTIVE"


async def test_a_member_may_not_use_admin_apis(api: Api) -> None:
    for path, action in ((f"{C}/os-services", "os_compute_api:os-services:list"),
                         (f"{C}/os-availability-zone/detail",
                          "os_compute_api:os-availability-zone:detail")):
        _forbidden(await api.request("GET", path, user="demo"), action)


def _write(path: Any, text: str) -> None:
    path.write_text(text)
    st = path.stat()  # a change the stat() check sees even on coarse timestamps
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


async def test_policy_yaml_overrides_while_running(api: Api) -> None:
    server = await boot(api, "overridden", user="demo")
    await make_user(api, "reader", "reader")
    reboot = {"reboot": {"type": "SOFT"}}
    key = {"keypair": {"name": "k1"}}
    resp = await api.request("POST", f"{S}/{server['id']}/action", user="reader", json=reboot)
    assert resp.status_code == 403
    assert (await api.request("POST", f"{C}/os-keypairs", user="demo", json=key)
            ).status_code == 200
    await api.request("DELETE", f"{C}/os-keypairs/k1", user="demo")

    policy_file = api.cloud.conf.state_path / "policy.yaml"
    _write(policy_file, '"os_compute_api:servers:reboot": '
                        '"role:reader and project_id:%(project_id)s"\n'
                        '"os_compute_api:os-keypairs:create": "role:admin"\n')
    resp = await api.request("POST", f"{S}/{server['id']}/action", user="reader", json=reboot)
    assert resp.status_code == 202, resp.text
    resp = await api.request("POST", f"{C}/os-keypairs", user="demo", json=key)
    _forbidden(resp, "os_compute_api:os-keypairs:create")
    assert (await api.request("POST", f"{C}/os-keypairs", user="admin", json=key)
            ).status_code == 200

    policy_file.unlink()  # back to the defaults
    resp = await api.request("POST", f"{C}/os-keypairs", user="demo",
                             json={"keypair": {"name": "k2"}})
    assert resp.status_code == 200, resp.text
