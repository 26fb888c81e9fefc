"""IdentityService over a real SQLite database: bootstrap, authentication, records, grants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.db import identity as records
from novalet.db import migrate
from novalet.db.engine import Database
from novalet.identity import api as identity_api
from novalet.identity.api import IdentityService
from novalet.identity.authentication import AuthenticationFailed, MalformedAuthRequest
from novalet.identity.tokens import TokenNotFound, TokenNotValid, TokenProvider


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[IdentityService]:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path))
    conf.set("identity", "region", "RegionTest")
    db = Database(conf.database_url)
    await migrate.sync(db)
    svc = IdentityService(db, TokenProvider(tmp_path / "keys", 3600), conf)
    assert await svc.bootstrap(admin_password="adminpw", demo_password="demopw")
    yield svc
    await db.close()


def password_auth(user: str, password: str, project: str | None = None,
                  **scope_extra: Any) -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}
    if project is not None:
        auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    auth.update(scope_extra)
    return {"auth": auth}


async def names_of(svc: IdentityService, user: str, project: str) -> list[str]:
    user_rec = await records.find_user(svc.db, user, "default")
    project_rec = await records.find_project(svc.db, project, "default")
    assert user_rec and project_rec
    return [r.name for r in await svc.roles_on_project(user_rec.id, project_rec.id)]


# --- bootstrap ----------------------------------------------------------------

async def test_bootstrap_makes_roles_projects_users_and_grants(
        service: IdentityService) -> None:
    assert [r.name for r in await service.list_roles()] == ["admin", "member", "reader"]
    assert [p.name for p in await service.list_projects()] == ["admin", "demo"]
    assert await names_of(service, "admin", "admin") == ["admin", "member", "reader"]
    assert await names_of(service, "demo", "demo") == ["member", "reader"]
    demo = (await service.list_users(name="demo"))[0]
    assert demo.password_hash and demo.password_hash.startswith("scrypt$")
    assert len(demo.id) == 32 and demo.domain_id == "default"


async def test_bootstrap_again_creates_nothing_and_keeps_passwords(
        service: IdentityService) -> None:
    assert not await service.bootstrap(admin_password="changed", demo_password="changed")
    assert len(await service.list_users()) == 2
    await service.authenticate(password_auth("admin", "adminpw", "admin"))


async def test_bootstrap_repairs_what_was_removed(service: IdentityService) -> None:
    demo = (await service.list_users(name="demo"))[0]
    await service.delete_user(demo.id)
    assert await service.bootstrap(admin_password="adminpw", demo_password="demopw")
    assert await names_of(service, "demo", "demo") == ["member", "reader"]


# --- authentication -----------------------------------------------------------

async def test_password_auth_scoped_by_project_name_embeds_roles(
        service: IdentityService) -> None:
    token_id, data = await service.authenticate(password_auth("demo", "demopw", "demo"))
    assert data.user_name == "demo" and data.project_name == "demo"
    assert data.role_names == ["member", "reader"]
    assert data.methods == ["password"]
    assert service.tokens.validate(token_id) == data


async def test_password_auth_by_user_id_and_project_id(service: IdentityService) -> None:
    demo = (await service.list_users(name="demo"))[0]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": demo.id, "password": "demopw"}}},
        "scope": {"project": {"id": demo.default_project_id}}}}
    _, data = await service.authenticate(body)
    assert (data.user_id, data.project_id) == (demo.id, demo.default_project_id)


@pytest.mark.parametrize("body", [
    password_auth("demo", "wrong", "demo"),
    password_auth("nobody", "demopw", "demo"),
    password_auth("demo", "demopw", "admin"),          # no role there
    password_auth("demo", "demopw", "no-such-project"),
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"name": "Elsewhere"}, "password": "demopw"}}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": "no-such-id", "password": "demopw"}}}}},
    password_auth("demo", "demopw", scope={"domain": {"id": "default"}}),
    {"auth": {"identity": {"methods": ["totp"], "totp": {}}}},
])
async def test_authentication_failures_all_look_alike(service: IdentityService,
                                                      body: dict[str, Any]) -> None:
    with pytest.raises(AuthenticationFailed) as failure:
        await service.authenticate(body)
    assert failure.value.code == 401
    assert failure.value.message == "The request you have made requires authentication."


async def test_disabled_users_and_projects_cannot_authenticate(
        service: IdentityService) -> None:
    demo = (await service.list_users(name="demo"))[0]
    await service.update_project(demo.default_project_id or "", {"enabled": False})
    with pytest.raises(AuthenticationFailed):
        await service.authenticate(password_auth("demo", "demopw", "demo"))
    await service.update_user(demo.id, {"enabled": False})
    with pytest.raises(AuthenticationFailed):
        await service.authenticate(password_auth("demo", "demopw", scope="unscoped"))


async def test_a_user_name_without_domain_is_a_bad_request(service: IdentityService) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "password": "demopw"}}}}}
    with pytest.raises(MalformedAuthRequest, match="domain"):
        await service.authenticate(body)


async def test_without_scope_the_default_project_is_used(service: IdentityService) -> None:
    _, data = await service.authenticate(password_auth("demo", "demopw"))
    assert data.project_name == "demo"
    _, unscoped = await service.authenticate(password_auth("demo", "demopw",
                                                           scope="unscoped"))
    assert unscoped.project_id is None and unscoped.roles == []


async def test_without_roles_on_the_default_project_the_token_is_unscoped(
        service: IdentityService) -> None:
    project = await service.create_project({"name": "empty"})
    await service.create_user({"name": "u", "password": "pw",
                               "default_project_id": project.id})
    _, data = await service.authenticate(password_auth("u", "pw"))
    assert data.project_id is None


async def test_a_token_rescopes_to_another_project_of_the_user(
        service: IdentityService) -> None:
    admin = (await service.list_users(name="admin"))[0]
    demo_project = (await service.list_projects(name="demo"))[0]
    member = await service.find_role("member")
    assert member
    await service.grant(admin.id, demo_project.id, member.id)
    unscoped_id, _ = await service.authenticate(
        password_auth("admin", "adminpw", scope="unscoped"))
    _, data = await service.authenticate({"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped_id}},
        "scope": {"project": {"id": demo_project.id}}}})
    assert (data.user_id, data.project_id) == (admin.id, demo_project.id)
    assert data.role_names == ["member", "reader"]  # member implies reader
    assert data.methods == ["token", "password"]


async def test_an_invalid_token_cannot_be_rescoped(service: IdentityService) -> None:
    with pytest.raises(TokenNotValid):
        await service.authenticate({"auth": {"identity": {
            "methods": ["token"], "token": {"id": "forged"}}}})


async def test_tokens_validate_without_the_database(service: IdentityService,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    token_id, data = await service.authenticate(password_auth("admin", "adminpw", "admin"))
    await service.validate_subject_token(token_id)  # reads the revocation events once

    def no_database() -> None:
        raise AssertionError("validating a token opened a transaction")

    monkeypatch.setattr(service.db, "transaction", no_database)
    # Within [identity] revocation_refresh, the events are the ones read above.
    assert (await service.validate_subject_token(token_id)).role_names == data.role_names


async def test_an_invalid_subject_token_is_not_found(service: IdentityService) -> None:
    with pytest.raises(TokenNotFound):
        await service.validate_subject_token("nonsense")


# --- catalog ------------------------------------------------------------------

def test_catalog_lists_each_service_on_every_interface(service: IdentityService) -> None:
    catalog = service.catalog("http://cloud.test:8774")
    urls = {(s["type"], s["name"]): {e["url"] for e in s["endpoints"]} for s in catalog}
    assert urls == {("identity", "keystone"): {"http://cloud.test:8774/identity/v3"},
                    ("compute", "nova"): {"http://cloud.test:8774/compute/v2.1"},
                    ("image", "glance"): {"http://cloud.test:8774/image"},
                    ("network", "neutron"): {"http://cloud.test:8774/network"}}
    for entry in catalog:
        assert [e["interface"] for e in entry["endpoints"]] == ["public", "internal", "admin"]
        assert {e["region"] for e in entry["endpoints"]} == {"RegionTest"}
        assert {e["region_id"] for e in entry["endpoints"]} == {"RegionTest"}


def test_catalog_ids_are_unique_and_stable(service: IdentityService) -> None:
    ids = [s["id"] for s in service.catalog("http://a")] + [
        e["id"] for s in service.catalog("http://a") for e in s["endpoints"]]
    assert len(set(ids)) == len(ids) == 16
    again = [s["id"] for s in service.catalog("http://b")] + [
        e["id"] for s in service.catalog("http://b") for e in s["endpoints"]]
    assert again == ids


# --- users and projects -------------------------------------------------------

async def test_user_names_are_unique_per_domain(service: IdentityService) -> None:
    with pytest.raises(records.DuplicateUser, match="name demo at domain ID default"):
        await service.create_user({"name": "demo"})
    user = await service.create_user({"name": "other"})
    with pytest.raises(records.DuplicateUser):
        await service.update_user(user.id, {"name": "demo"})


async def test_user_references_must_exist(service: IdentityService) -> None:
    with pytest.raises(identity_api.UnknownReference, match="Domain nowhere"):
        await service.create_user({"name": "x", "domain_id": "nowhere"})
    with pytest.raises(identity_api.UnknownReference, match="Project p-missing"):
        await service.create_user({"name": "x", "default_project_id": "p-missing"})
    assert await service.list_users(name="x") == []


async def test_a_new_password_replaces_the_old(service: IdentityService) -> None:
    demo = (await service.list_users(name="demo"))[0]
    await service.update_user(demo.id, {"password": "fresh"})
    await service.authenticate(password_auth("demo", "fresh", "demo"))
    with pytest.raises(AuthenticationFailed):
        await service.authenticate(password_auth("demo", "demopw", "demo"))


async def test_changing_ones_password_needs_the_original(service: IdentityService) -> None:
    demo = (await service.list_users(name="demo"))[0]
    with pytest.raises(AuthenticationFailed):
        await service.change_password(demo.id, "wrong", "next")
    await service.change_password(demo.id, "demopw", "next")
    await service.authenticate(password_auth("demo", "next", "demo"))


async def test_a_user_without_password_cannot_authenticate(service: IdentityService) -> None:
    await service.create_user({"name": "nopw", "default_project_id": None})
    with pytest.raises(AuthenticationFailed):
        await service.authenticate(password_auth("nopw", "", scope="unscoped"))


async def test_project_hierarchies_and_domain_projects_are_refused(
        service: IdentityService) -> None:
    with pytest.raises(identity_api.Unsupported, match="hierarchy"):
        await service.create_project({"name": "child", "parent_id": "some-project"})
    with pytest.raises(identity_api.Unsupported, match="is_domain"):
        await service.create_project({"name": "dom", "is_domain": True})
    project = await service.create_project({"name": "top", "parent_id": "default"})
    assert project.domain_id == "default"


async def test_list_filters(service: IdentityService) -> None:
    await service.create_project({"name": "off", "enabled": False})
    assert [p.name for p in await service.list_projects(enabled=False)] == ["off"]
    assert [p.name for p in await service.list_projects(name="demo")] == ["demo"]
    assert await service.list_projects(domain_id="elsewhere") == []
    assert [u.name for u in await service.list_users(domain_id="default")] == [
        "admin", "demo"]


async def test_deleting_a_project_removes_its_grants(service: IdentityService) -> None:
    demo_project = (await service.list_projects(name="demo"))[0]
    await service.delete_project(demo_project.id)
    assert await service.list_grants(project_id=demo_project.id) == []
    with pytest.raises(records.ProjectNotFound):
        await service.get_project(demo_project.id)
    assert len(await service.list_grants()) == 3  # the admin's


# --- roles and grants ---------------------------------------------------------

async def test_grants_are_idempotent_and_checkable(service: IdentityService) -> None:
    demo = (await service.list_users(name="demo"))[0]
    project = await service.create_project({"name": "extra"})
    role = await service.create_role("auditor")
    assert await service.grant(demo.id, project.id, role.id)
    assert not await service.grant(demo.id, project.id, role.id)
    await service.check_grant(demo.id, project.id, role.id)
    await service.revoke(demo.id, project.id, role.id)
    with pytest.raises(records.AssignmentNotFound):
        await service.check_grant(demo.id, project.id, role.id)
    with pytest.raises(records.AssignmentNotFound):
        await service.revoke(demo.id, project.id, role.id)


async def test_grants_name_the_missing_part(service: IdentityService) -> None:
    demo = (await service.list_users(name="demo"))[0]
    with pytest.raises(records.RoleNotFound, match="Could not find role: r-x"):
        await service.grant(demo.id, demo.default_project_id or "", "r-x")
    with pytest.raises(records.ProjectNotFound):
        await service.grant(demo.id, "p-x", "r-x")
    with pytest.raises(records.UserNotFound):
        await service.roles_on_project("u-x", demo.default_project_id or "")


async def test_deleting_a_role_or_user_removes_their_grants(
        service: IdentityService) -> None:
    reader = await service.find_role("reader")
    assert reader
    await service.delete_role(reader.id)
    assert {g[2].name for g in await service.list_grants()} == {"admin", "member"}
    demo = (await service.list_users(name="demo"))[0]
    await service.delete_user(demo.id)
    assert await service.list_grants(user_id=demo.id) == []
    with pytest.raises(records.DuplicateRole):
        await service.create_role("member")


async def test_projects_of_user(service: IdentityService) -> None:
    demo = (await service.list_users(name="demo"))[0]
    assert [p.name for p in await service.projects_of_user(demo.id)] == ["demo"]
    await service.update_project(demo.default_project_id or "", {"enabled": False})
    assert await service.projects_of_user(demo.id, enabled_only=True) == []
    with pytest.raises(records.UserNotFound):
        await service.projects_of_user("nobody")


async def test_the_migration_makes_the_default_domain(service: IdentityService) -> None:
    assert [d.id for d in await service.list_domains()] == ["default"]
    assert await service.list_domains(name="Other") == []
    with pytest.raises(records.DomainNotFound):
        await service.get_domain("other")
