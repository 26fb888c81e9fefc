"""The identity API (Keystone v3 subset) over HTTP, on the whole cloud, as clients see it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.functional.conftest import Api

BASE = "http://novalet.test"
V3 = "/identity/v3"
UNAUTHORIZED = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}
PASSWORDS = {"admin": "admin", "demo": "demo"}


def password_body(user: str, password: str, project: str | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    return {"auth": auth}


class IdentityApi:
    """Calls to /identity/v3 as a user named by name, and shortcuts for records."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._tokens: dict[tuple[str, str | None], str] = {}

    async def token(self, user: str = "admin", project: str | None = "") -> str:
        project = user if project == "" else project
        if (user, project) not in self._tokens:
            resp = await self.client.post(f"{V3}/auth/tokens", json=password_body(
                user, PASSWORDS.get(user, user), project))
            assert resp.status_code == 201, resp.text
            self._tokens[(user, project)] = resp.headers["X-Subject-Token"]
        return self._tokens[(user, project)]

    async def call(self, method: str, path: str, user: str = "admin",
                   **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": await self.token(user), **kwargs.pop("headers", {})}
        return await self.client.request(method, V3 + path, headers=headers, **kwargs)

    async def create(self, kind: str, **fields: Any) -> dict[str, Any]:
        resp = await self.call("POST", f"/{kind}s", json={kind: fields})
        assert resp.status_code == 201, resp.text
        created: dict[str, Any] = resp.json()[kind]
        return created

    async def id_of(self, kind: str, name: str) -> str:
        resp = await self.call("GET", f"/{kind}s", params={"name": name})
        [found] = resp.json()[f"{kind}s"]
        return str(found["id"])


@pytest.fixture
def identity(api: Api) -> IdentityApi:
    return IdentityApi(api.client)


# --- version discovery --------------------------------------------------------

async def test_the_unversioned_url_offers_v3_as_multiple_choices(identity: IdentityApi) -> None:
    resp = await identity.client.get("/identity/")
    assert resp.status_code == 300
    [v3] = resp.json()["versions"]["values"]
    assert v3["id"] == "v3.14" and v3["status"] == "stable"
    assert v3["links"] == [{"rel": "self", "href": f"{BASE}/identity/v3/"}]
    assert v3["media-types"][0]["base"] == "application/json"


@pytest.mark.parametrize("path", ["/identity/v3", "/identity/v3/"])
async def test_the_v3_document(identity: IdentityApi, path: str) -> None:
    resp = await identity.client.get(path)
    assert resp.status_code == 200
    assert resp.json()["version"]["id"] == "v3.14"


# --- issuing tokens -----------------------------------------------------------

async def test_a_password_token_has_keystones_shape(identity: IdentityApi) -> None:
    resp = await identity.client.post(f"{V3}/auth/tokens", json=password_body("demo", "demo", "demo"))
    assert resp.status_code == 201
    assert resp.headers["X-Subject-Token"]
    token = resp.json()["token"]
    assert set(token) == {"methods", "user", "audit_ids", "expires_at", "issued_at",
                          "project", "is_domain", "roles", "catalog"}
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "demo"
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["user"]["password_expires_at"] is None
    assert token["project"]["name"] == "demo"
    assert token["project"]["domain"] == {"id": "default", "name": "Default"}
    assert token["is_domain"] is False
    assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]
    assert token["expires_at"].endswith("Z") and len(token["audit_ids"]) == 1


async def test_the_catalog_points_at_this_server(identity: IdentityApi) -> None:
    resp = await identity.client.post(f"{V3}/auth/tokens", json=password_body("demo", "demo", "demo"))
    catalog = {s["type"]: s for s in resp.json()["token"]["catalog"]}
    assert {t: s["name"] for t, s in catalog.items()} == {
        "identity": "keystone", "compute": "nova", "image": "glance", "network": "neutron"}
    public = {t: [e["url"] for e in s["endpoints"] if e["interface"] == "public"]
              for t, s in catalog.items()}
    assert public == {"identity": [f"{BASE}/identity/v3"],
                      "compute": [f"{BASE}/compute/v2.1"], "image": [f"{BASE}/image"],
                      "network": [f"{BASE}/network"]}
    assert {e["region"] for e in catalog["compute"]["endpoints"]} == {"RegionOne"}


async def test_an_unscoped_token_has_no_project_roles_or_catalog(identity: IdentityApi) -> None:
    body = password_body("admin", "admin")
    body["auth"]["scope"] = "unscoped"
    resp = await identity.client.post(f"{V3}/auth/tokens", json=body)
    assert resp.status_code == 201
    assert set(resp.json()["token"]) == {"methods", "user", "audit_ids", "expires_at",
                                         "issued_at"}


async def test_a_token_rescopes_with_the_token_method(identity: IdentityApi) -> None:
    body = password_body("admin", "admin")
    body["auth"]["scope"] = "unscoped"
    unscoped = (await identity.client.post(f"{V3}/auth/tokens", json=body)
                ).headers["X-Subject-Token"]
    resp = await identity.client.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert resp.status_code == 201
    token = resp.json()["token"]
    assert token["project"]["name"] == "admin" and "token" in token["methods"]


@pytest.mark.parametrize("user,password,project", [
    ("demo", "wrong", "demo"),
    ("nobody", "demo", "demo"),
    ("demo", "demo", "admin"),      # demo holds no role on admin
])
async def test_refusals_are_401_with_keystones_body(identity: IdentityApi, user: str,
                                                    password: str, project: str) -> None:
    resp = await identity.client.post(f"{V3}/auth/tokens",
                                 json=password_body(user, password, project))
    assert resp.status_code == 401
    assert resp.json() == UNAUTHORIZED


async def test_a_disabled_user_is_refused(identity: IdentityApi) -> None:
    demo_id = await identity.id_of("user", "demo")
    resp = await identity.call("PATCH", f"/users/{demo_id}", json={"user": {"enabled": False}})
    assert resp.status_code == 200 and resp.json()["user"]["enabled"] is False
    resp = await identity.client.post(f"{V3}/auth/tokens", json=password_body("demo", "demo", "demo"))
    assert resp.json() == UNAUTHORIZED


@pytest.mark.parametrize("content,fragment", [
    (b"not json", "Malformed request body"),
    (b"[]", "must be a JSON object"),
    (b'{"auth": {}}', "'identity' is a required property"),
    (b'{"auth": {"identity": {"methods": "password"}}}', "methods"),
    ((b'{"auth": {"identity": {"methods": ["password"], "password": {"user": '
      b'{"name": "demo", "domain": {"id": "default"}}}}}}'), "'password' is a required"),
])
async def test_malformed_token_requests_are_400(identity: IdentityApi, content: bytes,
                                                fragment: str) -> None:
    resp = await identity.client.post(f"{V3}/auth/tokens", content=content,
                                 headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"]["title"] == "Bad Request"
    assert fragment in resp.json()["error"]["message"]


# --- checking tokens ----------------------------------------------------------

async def test_validating_a_token(identity: IdentityApi) -> None:
    demo = await identity.token("demo")
    resp = await identity.call("GET", "/auth/tokens", user="demo", headers={"X-Subject-Token": demo})
    assert resp.status_code == 200
    assert resp.headers["X-Subject-Token"] == demo
    assert resp.json()["token"]["project"]["name"] == "demo"
    assert "catalog" in resp.json()["token"]
    resp = await identity.call("GET", "/auth/tokens?nocatalog", user="demo",
                          headers={"X-Subject-Token": demo})
    assert "catalog" not in resp.json()["token"]
    assert resp.json()["token"]["roles"]


async def test_an_invalid_subject_token_is_404(identity: IdentityApi) -> None:
    resp = await identity.call("GET", "/auth/tokens", headers={"X-Subject-Token": "bogus"})
    assert resp.status_code == 404
    assert resp.json()["error"]["title"] == "Not Found"
    resp = await identity.call("HEAD", "/auth/tokens", headers={"X-Subject-Token": "bogus"})
    assert resp.status_code == 404


async def test_head_checks_a_token_without_a_body(identity: IdentityApi) -> None:
    resp = await identity.call("HEAD", "/auth/tokens",
                          headers={"X-Subject-Token": await identity.token("demo")})
    assert resp.status_code == 200 and resp.content == b""


async def test_only_admins_check_other_users_tokens(identity: IdentityApi) -> None:
    admin = await identity.token("admin")
    resp = await identity.call("GET", "/auth/tokens", user="demo",
                          headers={"X-Subject-Token": admin})
    assert resp.status_code == 403
    resp = await identity.call("GET", "/auth/tokens", headers={
        "X-Subject-Token": await identity.token("demo")})
    assert resp.status_code == 200


async def test_checking_needs_a_valid_caller_token(identity: IdentityApi) -> None:
    resp = await identity.client.get(f"{V3}/auth/tokens",
                                headers={"X-Subject-Token": await identity.token("demo")})
    assert resp.status_code == 401
    resp = await identity.client.get(f"{V3}/auth/tokens", headers={
        "X-Auth-Token": "forged", "X-Subject-Token": await identity.token("demo")})
    assert resp.json() == UNAUTHORIZED


async def test_auth_catalog_and_projects(identity: IdentityApi) -> None:
    resp = await identity.call("GET", "/auth/catalog", user="demo")
    assert {s["type"] for s in resp.json()["catalog"]} == {"identity", "compute", "image",
                                                          "network"}
    assert resp.json()["links"]["self"] == f"{BASE}{V3}/auth/catalog"
    resp = await identity.call("GET", "/auth/projects", user="demo")
    assert [p["name"] for p in resp.json()["projects"]] == ["demo"]


async def test_an_unscoped_token_sees_its_projects_but_no_catalog(identity: IdentityApi) -> None:
    body = password_body("demo", "demo")
    body["auth"]["scope"] = "unscoped"
    token = (await identity.client.post(f"{V3}/auth/tokens", json=body)).headers["X-Subject-Token"]
    resp = await identity.client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": token})
    assert [p["name"] for p in resp.json()["projects"]] == ["demo"]
    resp = await identity.client.get(f"{V3}/auth/catalog", headers={"X-Auth-Token": token})
    assert resp.status_code == 403
    resp = await identity.client.get(f"{V3}/users", headers={"X-Auth-Token": token})
    assert resp.status_code == 401  # admin calls need a project-scoped token


# --- users --------------------------------------------------------------------

async def test_user_lifecycle(identity: IdentityApi) -> None:
    project_id = await identity.id_of("project", "demo")
    user = await identity.create("user", name="u2", password="pw", email="u2@example.com",
                            default_project_id=project_id)
    assert user["domain_id"] == "default" and user["enabled"] is True
    assert user["email"] == "u2@example.com" and "password" not in user
    assert user["links"]["self"] == f"{BASE}{V3}/users/{user['id']}"
    resp = await identity.call("GET", f"/users/{user['id']}")
    assert resp.json()["user"]["default_project_id"] == project_id
    resp = await identity.call("PATCH", f"/users/{user['id']}",
                          json={"user": {"name": "u3", "email": None}})
    assert resp.json()["user"]["name"] == "u3" and "email" not in resp.json()["user"]
    assert (await identity.call("DELETE", f"/users/{user['id']}")).status_code == 204
    resp = await identity.call("GET", f"/users/{user['id']}")
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == f"Could not find user: {user['id']}."


async def test_user_list_and_filters(identity: IdentityApi) -> None:
    resp = await identity.call("GET", "/users")
    body = resp.json()
    assert [u["name"] for u in body["users"]] == ["admin", "demo", "nova"]
    assert body["links"] == {"self": f"{BASE}{V3}/users", "previous": None, "next": None}
    resp = await identity.call("GET", "/users", params={"name": "demo"})
    assert [u["name"] for u in resp.json()["users"]] == ["demo"]
    resp = await identity.call("GET", "/users", params={"domain_id": "other"})
    assert resp.json()["users"] == []


async def test_duplicate_and_invalid_users(identity: IdentityApi) -> None:
    resp = await identity.call("POST", "/users", json={"user": {"name": "demo"}})
    assert resp.status_code == 409
    assert "Duplicate entry found with name demo" in resp.json()["error"]["message"]
    resp = await identity.call("POST", "/users", json={"user": {"name": ""}})
    assert resp.status_code == 400 and "user/name" in resp.json()["error"]["message"]
    resp = await identity.call("POST", "/users", json={"user": {"name": "x", "enabled": "maybe"}})
    assert resp.status_code == 400
    # Unknown attributes are kept, as Keystone keeps them (test_identity_user_extras.py),
    # but never one the server sets.
    resp = await identity.call("POST", "/users", json={"user": {"name": "x", "id": "mine"}})
    assert resp.status_code == 400 and "'id'" in resp.json()["error"]["message"]
    resp = await identity.call("POST", "/users", json={"user": {"name": "x", "domain_id": "d2"}})
    assert resp.status_code == 400 and "Domain d2 does not exist" in resp.text


async def test_a_new_user_can_log_in_once_granted_a_role(identity: IdentityApi) -> None:
    user = await identity.create("user", name="u2", password="u2")
    project = await identity.create("project", name="p2")
    role_id = await identity.id_of("role", "member")
    resp = await identity.client.post(f"{V3}/auth/tokens", json=password_body("u2", "u2", "p2"))
    assert resp.status_code == 401
    resp = await identity.call("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role_id}")
    assert resp.status_code == 204
    resp = await identity.client.post(f"{V3}/auth/tokens", json=password_body("u2", "u2", "p2"))
    assert resp.status_code == 201
    # member implies reader, as in Keystone's bootstrap
    assert [r["name"] for r in resp.json()["token"]["roles"]] == ["member", "reader"]


async def test_users_see_themselves_but_not_others(identity: IdentityApi) -> None:
    demo_id = await identity.id_of("user", "demo")
    admin_id = await identity.id_of("user", "admin")
    assert (await identity.call("GET", f"/users/{demo_id}", user="demo")).status_code == 200
    resp = await identity.call("GET", f"/users/{demo_id}/projects", user="demo")
    assert [p["name"] for p in resp.json()["projects"]] == ["demo"]
    for path in (f"/users/{admin_id}", f"/users/{admin_id}/projects", "/users", "/projects",
                 "/roles", "/role_assignments"):
        resp = await identity.call("GET", path, user="demo")
        assert resp.status_code == 403, path
        assert resp.json()["error"]["message"] == (
            "Policy doesn't allow identity:admin to be performed.")
    resp = await identity.call("POST", "/users", user="demo", json={"user": {"name": "x"}})
    assert resp.status_code == 403


async def test_users_change_their_own_password(identity: IdentityApi) -> None:
    demo_id = await identity.id_of("user", "demo")
    admin_id = await identity.id_of("user", "admin")
    change = {"user": {"original_password": "demo", "password": "new"}}
    resp = await identity.call("POST", f"/users/{admin_id}/password", user="demo", json=change)
    assert resp.status_code == 403
    wrong = {"user": {"original_password": "nope", "password": "new"}}
    resp = await identity.call("POST", f"/users/{demo_id}/password", user="demo", json=wrong)
    assert resp.status_code == 401
    resp = await identity.call("POST", f"/users/{demo_id}/password", user="demo", json=change)
    assert resp.status_code == 204
    resp = await identity.client.post(f"{V3}/auth/tokens", json=password_body("demo", "new", "demo"))
    assert resp.status_code == 201


# --- projects -----------------------------------------------------------------

async def test_project_lifecycle(identity: IdentityApi) -> None:
    project = await identity.create("project", name="p2", description="second")
    assert project["domain_id"] == "default" and project["parent_id"] == "default"
    assert project["is_domain"] is False and project["description"] == "second"
    resp = await identity.call("PATCH", f"/projects/{project['id']}",
                          json={"project": {"name": "p3", "enabled": False}})
    assert resp.json()["project"]["name"] == "p3"
    assert resp.json()["project"]["enabled"] is False
    resp = await identity.call("GET", "/projects", params={"enabled": "false"})
    assert [p["name"] for p in resp.json()["projects"]] == ["p3"]
    assert (await identity.call("DELETE", f"/projects/{project['id']}")).status_code == 204
    assert (await identity.call("GET", f"/projects/{project['id']}")).status_code == 404
    assert (await identity.call("DELETE", f"/projects/{project['id']}")).status_code == 404


async def test_duplicate_and_invalid_projects(identity: IdentityApi) -> None:
    resp = await identity.call("POST", "/projects", json={"project": {"name": "demo"}})
    assert resp.status_code == 409
    resp = await identity.call("POST", "/projects", json={"project": {"name": "x" * 65}})
    assert resp.status_code == 400
    resp = await identity.call("POST", "/projects", json={"project": {"name": "c", "parent_id": "p"}})
    assert resp.status_code == 400 and "hierarchy" in resp.json()["error"]["message"]
    resp = await identity.call("PATCH", "/projects/none", json={"project": {"name": "y"}})
    assert resp.status_code == 404
    resp = await identity.call("GET", "/projects", params={"enabled": "sometimes"})
    assert resp.status_code == 400


async def test_a_member_sees_their_own_project(identity: IdentityApi) -> None:
    demo_project = await identity.id_of("project", "demo")
    admin_project = await identity.id_of("project", "admin")
    resp = await identity.call("GET", f"/projects/{demo_project}", user="demo")
    assert resp.status_code == 200 and resp.json()["project"]["name"] == "demo"
    assert (await identity.call("GET", f"/projects/{admin_project}", user="demo")).status_code == 403


# --- roles and assignments ----------------------------------------------------

async def test_role_lifecycle(identity: IdentityApi) -> None:
    role = await identity.create("role", name="auditor")
    assert role["links"]["self"] == f"{BASE}{V3}/roles/{role['id']}"
    resp = await identity.call("GET", "/roles")
    assert [r["name"] for r in resp.json()["roles"]] == ["admin", "auditor", "member", "reader"]
    assert (await identity.call("POST", "/roles", json={"role": {"name": "auditor"}})
            ).status_code == 409
    assert (await identity.call("GET", f"/roles/{role['id']}")).json()["role"]["name"] == "auditor"
    assert (await identity.call("DELETE", f"/roles/{role['id']}")).status_code == 204
    assert (await identity.call("GET", f"/roles/{role['id']}")).status_code == 404


async def test_assignment_put_head_get_delete(identity: IdentityApi) -> None:
    demo_id = await identity.id_of("user", "demo")
    project_id = await identity.id_of("project", "admin")
    role_id = await identity.id_of("role", "reader")
    grant = f"/projects/{project_id}/users/{demo_id}/roles/{role_id}"
    assert (await identity.call("HEAD", grant)).status_code == 404
    assert (await identity.call("PUT", grant)).status_code == 204
    assert (await identity.call("PUT", grant)).status_code == 204
    assert (await identity.call("HEAD", grant)).status_code == 204
    resp = await identity.call("GET", f"/projects/{project_id}/users/{demo_id}/roles")
    assert [r["name"] for r in resp.json()["roles"]] == ["reader"]
    assert (await identity.call("DELETE", grant)).status_code == 204
    resp = await identity.call("DELETE", grant)
    assert resp.status_code == 404
    assert "Could not find role assignment" in resp.json()["error"]["message"]


async def test_assignment_to_something_missing_is_404(identity: IdentityApi) -> None:
    demo_id = await identity.id_of("user", "demo")
    project_id = await identity.id_of("project", "demo")
    resp = await identity.call("PUT", f"/projects/{project_id}/users/{demo_id}/roles/nope")
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Could not find role: nope."


async def test_role_assignments_listing(identity: IdentityApi) -> None:
    demo_id = await identity.id_of("user", "demo")
    resp = await identity.call("GET", "/role_assignments")
    assert len(resp.json()["role_assignments"]) == 6  # admin 3, demo 2, nova 1
    resp = await identity.call("GET", "/role_assignments", params={"user.id": demo_id})
    rows = resp.json()["role_assignments"]
    assert len(rows) == 2
    assert rows[0]["user"] == {"id": demo_id}
    assert set(rows[0]["scope"]["project"]) == {"id"}
    assert rows[0]["links"]["assignment"].startswith(f"{BASE}{V3}/projects/")
    reader_id = await identity.id_of("role", "reader")
    admin_project = await identity.id_of("project", "admin")
    resp = await identity.call("GET", "/role_assignments", params={
        "role.id": reader_id, "scope.project.id": admin_project, "include_names": "1"})
    [row] = resp.json()["role_assignments"]
    assert row["user"]["name"] == "admin" and row["role"]["name"] == "reader"
    assert row["scope"]["project"]["domain"] == {"id": "default", "name": "Default"}
    resp = await identity.call("GET", "/role_assignments", params={"group.id": "g"})
    assert resp.json()["role_assignments"] == []


# --- domains ------------------------------------------------------------------

async def test_only_the_default_domain(identity: IdentityApi) -> None:
    resp = await identity.call("GET", "/domains", user="demo")
    [domain] = resp.json()["domains"]
    assert (domain["id"], domain["name"], domain["enabled"]) == ("default", "Default", True)
    resp = await identity.call("GET", "/domains/default")
    assert resp.json()["domain"]["name"] == "Default"
    resp = await identity.call("GET", "/domains/other")
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Could not find domain: other."


# --- catalog records and the edges of the API -----------------------------------

async def test_services_endpoints_and_regions_mirror_the_catalog(
        identity: IdentityApi) -> None:
    resp = await identity.call("GET", "/services", params={"type": "compute"})
    [nova] = resp.json()["services"]
    assert (nova["name"], nova["enabled"]) == ("nova", True)
    resp = await identity.call("GET", "/endpoints", params={
        "service_id": nova["id"], "interface": "public"})
    [endpoint] = resp.json()["endpoints"]
    assert endpoint["url"] == f"{BASE}/compute/v2.1" and endpoint["region_id"] == "RegionOne"
    resp = await identity.call("GET", f"/endpoints/{endpoint['id']}")
    assert resp.json()["endpoint"]["service_id"] == nova["id"]
    assert len((await identity.call("GET", "/endpoints")).json()["endpoints"]) == 12
    resp = await identity.call("GET", "/regions", user="demo")
    assert [r["id"] for r in resp.json()["regions"]] == ["RegionOne"]
    assert (await identity.call("GET", "/services/nope")).status_code == 404
    assert (await identity.call("GET", "/endpoints", user="demo")).status_code == 403


async def test_unknown_paths_and_methods_answer_in_keystones_shape(
        identity: IdentityApi) -> None:
    resp = await identity.call("GET", "/no-such-thing")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == 404
    resp = await identity.call("POST", "/endpoints", json={})
    assert resp.status_code == 405 and resp.json()["error"]["title"] == "Method Not Allowed"
