"""Identity administration over HTTP: domains, groups, assignments of every kind, system scope."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.conftest import Api
from tests.functional.test_identity_api import V3, IdentityApi, password_body


@pytest.fixture
def identity(api: Api) -> IdentityApi:
    return IdentityApi(api.client)


async def login(identity: IdentityApi, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    resp = await identity.client.post(f"{V3}/auth/tokens", json=body)
    return resp.status_code, resp.json(), resp.headers.get("X-Subject-Token", "")


def scoped_body(user: str, password: str, scope: dict[str, Any],
                user_domain: str = "default") -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": user_domain}, "password": password}}},
        "scope": scope}}


# --- domains ------------------------------------------------------------------

async def test_domain_lifecycle(identity: IdentityApi) -> None:
    domain = await identity.create("domain", name="acme", description="ACME Inc.")
    assert (domain["name"], domain["enabled"], domain["description"]) == (
        "acme", True, "ACME Inc.")
    resp = await identity.call("GET", "/domains", params={"name": "acme"})
    assert [d["id"] for d in resp.json()["domains"]] == [domain["id"]]
    resp = await identity.call("POST", "/domains", json={"domain": {"name": "acme"}})
    assert resp.status_code == 409
    # an enabled domain can't be deleted
    resp = await identity.call("DELETE", f"/domains/{domain['id']}")
    assert resp.status_code == 403 and "disable it first" in resp.json()["error"]["message"]
    resp = await identity.call("PATCH", f"/domains/{domain['id']}",
                               json={"domain": {"enabled": False}})
    assert resp.status_code == 200 and resp.json()["domain"]["enabled"] is False
    resp = await identity.call("GET", "/domains", params={"enabled": "false"})
    assert [d["name"] for d in resp.json()["domains"]] == ["acme"]
    assert (await identity.call("DELETE", f"/domains/{domain['id']}")).status_code == 204
    assert (await identity.call("GET", f"/domains/{domain['id']}")).status_code == 404


async def test_the_default_domain_stays(identity: IdentityApi) -> None:
    resp = await identity.call("PATCH", "/domains/default", json={"domain": {"enabled": False}})
    assert resp.status_code == 403
    assert (await identity.call("DELETE", "/domains/default")).status_code == 403
    resp = await identity.call("POST", "/domains", user="demo", json={"domain": {"name": "x"}})
    assert resp.status_code == 403
    resp = await identity.call("POST", "/domains", json={"domain": {"name": ""}})
    assert resp.status_code == 400


async def test_users_and_projects_live_in_a_domain(identity: IdentityApi) -> None:
    domain = await identity.create("domain", name="acme")
    user = await identity.create("user", name="demo", password="pw", domain_id=domain["id"])
    project = await identity.create("project", name="demo", domain_id=domain["id"])
    assert user["domain_id"] == project["domain_id"] == domain["id"]  # names per domain
    resp = await identity.call("GET", "/users", params={"domain_id": domain["id"]})
    assert [u["id"] for u in resp.json()["users"]] == [user["id"]]
    resp = await identity.call("GET", "/projects", params={"domain_id": domain["id"],
                                                            "name": "demo"})
    assert [p["id"] for p in resp.json()["projects"]] == [project["id"]]
    member = await identity.id_of("role", "member")
    resp = await identity.call(
        "PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{member}")
    assert resp.status_code == 204
    status, body, _ = await login(identity, scoped_body(
        "demo", "pw", {"project": {"name": "demo", "domain": {"name": "acme"}}},
        user_domain=domain["id"]))
    assert status == 201
    assert body["token"]["user"]["domain"] == {"id": domain["id"], "name": "acme"}
    assert body["token"]["project"]["domain"] == {"id": domain["id"], "name": "acme"}
    # a disabled domain's users can't log in; deleting it takes its users and projects
    await identity.call("PATCH", f"/domains/{domain['id']}", json={"domain": {"enabled": False}})
    status, _, _ = await login(identity, scoped_body(
        "demo", "pw", {"project": {"id": project["id"]}}, user_domain=domain["id"]))
    assert status == 401
    assert (await identity.call("DELETE", f"/domains/{domain['id']}")).status_code == 204
    assert (await identity.call("GET", f"/users/{user['id']}")).status_code == 404
    assert (await identity.call("GET", f"/projects/{project['id']}")).status_code == 404


# --- groups -------------------------------------------------------------------

async def test_group_lifecycle_and_members(identity: IdentityApi) -> None:
    group = await identity.create("group", name="devs", description="Developers")
    assert (group["domain_id"], group["description"]) == ("default", "Developers")
    resp = await identity.call("POST", "/groups", json={"group": {"name": "devs"}})
    assert resp.status_code == 409
    demo_id = await identity.id_of("user", "demo")
    member = f"/groups/{group['id']}/users/{demo_id}"
    assert (await identity.call("HEAD", member)).status_code == 404
    assert (await identity.call("PUT", member)).status_code == 204
    assert (await identity.call("PUT", member)).status_code == 204
    assert (await identity.call("HEAD", member)).status_code == 204
    resp = await identity.call("GET", f"/groups/{group['id']}/users")
    assert [u["name"] for u in resp.json()["users"]] == ["demo"]
    resp = await identity.call("GET", f"/users/{demo_id}/groups", user="demo")
    assert [g["name"] for g in resp.json()["groups"]] == ["devs"]
    resp = await identity.call("PATCH", f"/groups/{group['id']}",
                               json={"group": {"name": "developers"}})
    assert resp.json()["group"]["name"] == "developers"
    resp = await identity.call("GET", "/groups", params={"name": "developers"})
    assert [g["id"] for g in resp.json()["groups"]] == [group["id"]]
    assert (await identity.call("DELETE", member)).status_code == 204
    assert (await identity.call("DELETE", member)).status_code == 404
    assert (await identity.call("PUT", f"/groups/{group['id']}/users/nobody")).status_code == 404
    # leaving a group revoked demo's tokens (they may have carried its roles)
    assert (await identity.call("GET", "/groups", user="demo")).status_code == 401
    identity._tokens.clear()
    assert (await identity.call("GET", "/groups", user="demo")).status_code == 403
    assert (await identity.call("DELETE", f"/groups/{group['id']}")).status_code == 204
    assert (await identity.call("GET", f"/groups/{group['id']}")).status_code == 404


async def test_group_roles_count_when_a_member_logs_in(identity: IdentityApi) -> None:
    user = await identity.create("user", name="carol", password="pw")
    project = await identity.create("project", name="shared")
    group = await identity.create("group", name="team")
    member = await identity.id_of("role", "member")
    grant = f"/projects/{project['id']}/groups/{group['id']}/roles/{member}"
    assert (await identity.call("PUT", grant)).status_code == 204
    assert (await identity.call("HEAD", grant)).status_code == 204
    resp = await identity.call("GET", f"/projects/{project['id']}/groups/{group['id']}/roles")
    assert [r["name"] for r in resp.json()["roles"]] == ["member"]
    status, _, _ = await login(identity, password_body("carol", "pw", "shared"))
    assert status == 401  # not in the group yet
    await identity.call("PUT", f"/groups/{group['id']}/users/{user['id']}")
    status, body, token = await login(identity, password_body("carol", "pw", "shared"))
    assert status == 201
    assert [r["name"] for r in body["token"]["roles"]] == ["member", "reader"]
    resp = await identity.client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": token})
    assert [p["name"] for p in resp.json()["projects"]] == ["shared"]
    # leaving the group revokes the token that carried the group's role
    await identity.call("DELETE", f"/groups/{group['id']}/users/{user['id']}")
    resp = await identity.client.get("/compute/v2.1/servers", headers={"X-Auth-Token": token})
    assert resp.status_code == 401
    assert (await identity.call("DELETE", grant)).status_code == 204
    assert (await identity.call("DELETE", grant)).status_code == 404


# --- assignments and their listing ---------------------------------------------

async def test_domain_and_system_assignments(identity: IdentityApi) -> None:
    demo_id = await identity.id_of("user", "demo")
    reader = await identity.id_of("role", "reader")
    group = await identity.create("group", name="auditors")
    for path in (f"/domains/default/users/{demo_id}/roles/{reader}",
                 f"/domains/default/groups/{group['id']}/roles/{reader}",
                 f"/system/groups/{group['id']}/roles/{reader}"):
        assert (await identity.call("HEAD", path)).status_code == 404
        assert (await identity.call("PUT", path)).status_code == 204
        assert (await identity.call("HEAD", path)).status_code == 204
    resp = await identity.call("GET", f"/domains/default/users/{demo_id}/roles")
    assert [r["name"] for r in resp.json()["roles"]] == ["reader"]
    resp = await identity.call("PUT", f"/domains/nope/users/{demo_id}/roles/{reader}")
    assert resp.status_code == 404
    resp = await identity.call("GET", "/role_assignments", params={"scope.domain.id": "default"})
    rows = resp.json()["role_assignments"]
    assert {("user" in r, "group" in r) for r in rows} == {(True, False), (False, True)}
    assert all(r["scope"] == {"domain": {"id": "default"}} for r in rows)
    resp = await identity.call("GET", "/role_assignments", params={"scope.system": "all"})
    [row] = resp.json()["role_assignments"]
    assert row["group"] == {"id": group["id"]} and row["scope"] == {"system": {"all": True}}
    assert row["links"]["assignment"].endswith(f"/system/groups/{group['id']}/roles/{reader}")


async def test_role_assignments_effective_and_names(identity: IdentityApi) -> None:
    user = await identity.create("user", name="dave", password="pw")
    project_id = await identity.id_of("project", "demo")
    group = await identity.create("group", name="ops")
    member = await identity.id_of("role", "member")
    await identity.call("PUT", f"/groups/{group['id']}/users/{user['id']}")
    await identity.call("PUT", f"/projects/{project_id}/groups/{group['id']}/roles/{member}")
    resp = await identity.call("GET", "/role_assignments", params={"user.id": user["id"]})
    assert resp.json()["role_assignments"] == []  # direct only
    resp = await identity.call("GET", "/role_assignments", params={
        "user.id": user["id"], "effective": "", "include_names": "true"})
    rows = resp.json()["role_assignments"]
    assert sorted(r["role"]["name"] for r in rows) == ["member", "reader"]  # implied too
    row = rows[0]
    assert row["user"]["name"] == "dave" and row["scope"]["project"]["name"] == "demo"
    assert row["links"]["membership"].endswith(f"/groups/{group['id']}/users/{user['id']}")
    resp = await identity.call("GET", "/role_assignments", params={"group.id": group["id"]})
    [row] = resp.json()["role_assignments"]
    assert row["group"] == {"id": group["id"]} and row["role"] == {"id": member}
    resp = await identity.call("GET", "/role_assignments", params={
        "group.id": group["id"], "effective": "1", "role.id": member})
    assert [r["user"]["id"] for r in resp.json()["role_assignments"]] == [user["id"]]


# --- system scope ---------------------------------------------------------------

async def test_a_system_scoped_token(identity: IdentityApi) -> None:
    admin_id = await identity.id_of("user", "admin")
    admin_role = await identity.id_of("role", "admin")
    system = {"system": {"all": True}}
    status, _, _ = await login(identity, scoped_body("admin", "admin", system))
    assert status == 401  # no system role yet
    resp = await identity.call("PUT", f"/system/users/{admin_id}/roles/{admin_role}")
    assert resp.status_code == 204
    resp = await identity.call("GET", f"/system/users/{admin_id}/roles/{admin_role}")
    assert resp.status_code == 204
    resp = await identity.call("GET", f"/system/users/{admin_id}/roles")
    assert [r["name"] for r in resp.json()["roles"]] == ["admin"]
    status, body, token = await login(identity, scoped_body("admin", "admin", system))
    assert status == 201
    assert body["token"]["system"] == {"all": True} and "project" not in body["token"]
    assert [r["name"] for r in body["token"]["roles"]] == ["admin", "member", "reader"]
    # a system admin administers identity
    resp = await identity.client.get(f"{V3}/users", headers={"X-Auth-Token": token})
    assert resp.status_code == 200
    resp = await identity.client.get(f"{V3}/auth/tokens", headers={
        "X-Auth-Token": token, "X-Subject-Token": token})
    assert resp.json()["token"]["system"] == {"all": True}
    status, _, _ = await login(identity, scoped_body("demo", "demo", system))
    assert status == 401
    status, _, _ = await login(identity, scoped_body("admin", "admin", {"system": {"x": 1}}))
    assert status == 400
