"""Application credentials: made by their owner, shown once, used to authenticate."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.functional.conftest import Api
from tests.functional.test_identity_api import V3, IdentityApi

SERVERS = "/compute/v2.1/servers"


@pytest.fixture
def identity(api: Api) -> IdentityApi:
    return IdentityApi(api.client)


def app_cred_auth(**cred: Any) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": cred}}}


async def create(identity: IdentityApi, user: str = "demo", token: str | None = None,
                 **fields: Any) -> tuple[int, dict[str, Any]]:
    user_id = await identity.id_of("user", user)
    resp = await identity.client.post(
        f"{V3}/users/{user_id}/application_credentials",
        headers={"X-Auth-Token": token or await identity.token(user)},
        json={"application_credential": fields})
    body: dict[str, Any] = resp.json()
    return resp.status_code, body.get("application_credential", body)


async def test_create_show_list_delete(identity: IdentityApi) -> None:
    status, cred = await create(identity, name="ci", description="for CI")
    assert status == 201
    demo_id = await identity.id_of("user", "demo")
    project_id = await identity.id_of("project", "demo")
    assert (cred["user_id"], cred["project_id"], cred["unrestricted"]) == (
        demo_id, project_id, False)
    assert sorted(r["name"] for r in cred["roles"]) == ["member", "reader"]
    assert len(cred["secret"]) >= 64 and cred["expires_at"] is None
    path = f"/users/{demo_id}/application_credentials"
    resp = await identity.call("GET", f"{path}/{cred['id']}", user="demo")
    shown = resp.json()["application_credential"]
    assert shown["name"] == "ci" and "secret" not in shown  # only shown at creation
    resp = await identity.call("GET", path, user="demo", params={"name": "ci"})
    assert [c["id"] for c in resp.json()["application_credentials"]] == [cred["id"]]
    status, body = await create(identity, name="ci")
    assert status == 409
    # the admin may read and delete them, other users may not
    assert (await identity.call("GET", path)).status_code == 200
    resp = await identity.call("GET", f"/users/{await identity.id_of('user', 'admin')}"
                                      f"/application_credentials/{cred['id']}")
    assert resp.status_code == 404
    assert (await identity.call("DELETE", f"{path}/{cred['id']}", user="demo")).status_code == 204
    assert (await identity.call("GET", f"{path}/{cred['id']}", user="demo")).status_code == 404


async def test_authenticating_with_an_application_credential(identity: IdentityApi) -> None:
    status, cred = await create(identity, name="bot", secret="s3cret",
                                roles=[{"name": "reader"}])
    assert status == 201 and cred["secret"] == "s3cret"
    assert [r["name"] for r in cred["roles"]] == ["reader"]
    resp = await identity.client.post(f"{V3}/auth/tokens",
                                      json=app_cred_auth(id=cred["id"], secret="s3cret"))
    assert resp.status_code == 201
    token = resp.json()["token"]
    assert token["methods"] == ["application_credential"]
    assert token["project"]["name"] == "demo"
    assert [r["name"] for r in token["roles"]] == ["reader"]
    assert token["application_credential"]["id"] == cred["id"]
    token_id = resp.headers["X-Subject-Token"]
    resp = await identity.client.get(SERVERS, headers={"X-Auth-Token": token_id})
    assert resp.status_code == 200
    # by name and user
    resp = await identity.client.post(f"{V3}/auth/tokens", json=app_cred_auth(
        name="bot", secret="s3cret", user={"name": "demo", "domain": {"id": "default"}}))
    assert resp.status_code == 201
    for bad in (app_cred_auth(id=cred["id"], secret="wrong"),
                app_cred_auth(id="nope", secret="s3cret"),
                app_cred_auth(name="bot", secret="s3cret", user={"name": "admin",
                                                                 "domain": {"id": "default"}})):
        resp = await identity.client.post(f"{V3}/auth/tokens", json=bad)
        assert resp.status_code == 401
    resp = await identity.client.post(f"{V3}/auth/tokens", json=app_cred_auth(secret="x"))
    assert resp.status_code == 400
    # deleting the credential revokes its tokens
    demo_id = await identity.id_of("user", "demo")
    resp = await identity.call("DELETE", f"/users/{demo_id}/application_credentials/"
                                         f"{cred['id']}", user="demo")
    assert resp.status_code == 204
    resp = await identity.client.get(SERVERS, headers={"X-Auth-Token": token_id})
    assert resp.status_code == 401


async def test_roles_are_a_subset_of_the_creators(identity: IdentityApi) -> None:
    status, body = await create(identity, name="x", roles=[{"name": "admin"}])
    assert status == 403 and "admin" in body["error"]["message"]
    status, body = await create(identity, name="x", expires_at="2000-01-01T00:00:00Z")
    assert status == 400
    status, body = await create(identity, name="x", colour="red")
    assert status == 400
    # someone else's user id: 403
    admin_id = await identity.id_of("user", "admin")
    resp = await identity.client.post(
        f"{V3}/users/{admin_id}/application_credentials",
        headers={"X-Auth-Token": await identity.token("demo")},
        json={"application_credential": {"name": "x"}})
    assert resp.status_code == 403


async def test_an_expired_credential_is_refused(identity: IdentityApi, api: Api) -> None:
    status, cred = await create(identity, name="soon", expires_at="2999-01-01T00:00:00Z")
    assert status == 201 and cred["expires_at"].startswith("2999-01-01T00:00:00")
    from sqlalchemy import update

    from novalet.db.models import ApplicationCredential, utcnow
    async with api.cloud.services.db.transaction() as session:
        await session.execute(update(ApplicationCredential).values(expires_at=utcnow()))
    resp = await identity.client.post(f"{V3}/auth/tokens", json=app_cred_auth(
        id=cred["id"], secret=cred["secret"]))
    assert resp.status_code == 401


async def test_a_restricted_credential_cannot_make_another(identity: IdentityApi) -> None:
    for unrestricted, expected in ((False, 403), (True, 201)):
        status, cred = await create(identity, name=f"parent-{unrestricted}",
                                    unrestricted=unrestricted)
        resp = await identity.client.post(f"{V3}/auth/tokens", json=app_cred_auth(
            id=cred["id"], secret=cred["secret"]))
        token = resp.headers["X-Subject-Token"]
        status, body = await create(identity, token=token, name=f"child-{unrestricted}")
        assert status == expected, body


async def test_a_restricted_credential_cannot_delete_others(identity: IdentityApi) -> None:
    """A leaked restricted credential can't wipe its owner's other credentials."""
    status, other = await create(identity, name="other")
    path = f"/users/{await identity.id_of('user', 'demo')}/application_credentials"
    for unrestricted, expected in ((False, 403), (True, 204)):
        status, cred = await create(identity, name=f"deleter-{unrestricted}",
                                    unrestricted=unrestricted)
        resp = await identity.client.post(f"{V3}/auth/tokens", json=app_cred_auth(
            id=cred["id"], secret=cred["secret"]))
        headers = {"X-Auth-Token": resp.headers["X-Subject-Token"]}
        resp = await identity.client.delete(f"{V3}{path}/{other['id']}", headers=headers)
        assert resp.status_code == expected, resp.text


async def test_a_credential_needs_its_roles_still_held(identity: IdentityApi) -> None:
    status, cred = await create(identity, name="ci")
    demo_id = await identity.id_of("user", "demo")
    project_id = await identity.id_of("project", "demo")
    member = await identity.id_of("role", "member")
    await identity.call("DELETE", f"/projects/{project_id}/users/{demo_id}/roles/{member}")
    resp = await identity.client.post(f"{V3}/auth/tokens", json=app_cred_auth(
        id=cred["id"], secret=cred["secret"]))
    assert resp.status_code == 401


async def test_a_token_outlives_no_expired_credential_cve_2022_2447(
        identity: IdentityApi, api: Api) -> None:
    """Keystone's CVE-2022-2447: a token made from an application credential stayed
    valid after the credential expired."""
    from sqlalchemy import update

    from novalet.db.models import ApplicationCredential, utcnow
    status, cred = await create(identity, name="brief", expires_at="2999-01-01T00:00:00Z")
    assert status == 201
    resp = await identity.client.post(f"{V3}/auth/tokens", json=app_cred_auth(
        id=cred["id"], secret=cred["secret"]))
    assert resp.status_code == 201
    token_id = resp.headers["X-Subject-Token"]
    assert (await identity.client.get(SERVERS, headers={"X-Auth-Token": token_id})
            ).status_code == 200
    async with api.cloud.services.db.transaction() as session:
        await session.execute(update(ApplicationCredential).values(expires_at=utcnow()))
    resp = await identity.client.get(SERVERS, headers={"X-Auth-Token": token_id})
    assert resp.status_code == 401
    resp = await identity.call("GET", "/auth/tokens", headers={"X-Subject-Token": token_id})
    assert resp.status_code == 404


async def test_a_credential_token_expires_no_later_than_its_credential(
        identity: IdentityApi) -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).replace(
        microsecond=0, tzinfo=None)
    status, cred = await create(identity, name="five-minutes",
                                expires_at=soon.isoformat() + "Z")
    assert status == 201, cred
    resp = await identity.client.post(f"{V3}/auth/tokens", json=app_cred_auth(
        id=cred["id"], secret=cred["secret"]))
    assert resp.status_code == 201
    expires = dt.datetime.fromisoformat(resp.json()["token"]["expires_at"].rstrip("Z"))
    assert expires <= soon
