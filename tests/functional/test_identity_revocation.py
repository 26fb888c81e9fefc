"""Token revocation: a token already issued stops working (401 at the compute API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.functional.conftest import Api
from tests.functional.test_identity_api import V3, IdentityApi, password_body

SERVERS = "/compute/v2.1/servers"


@pytest.fixture
def identity(api: Api) -> IdentityApi:
    return IdentityApi(api.client)


async def user_token(identity: IdentityApi, name: str = "erin", project: str = "erinp"
                     ) -> tuple[str, str, str]:
    """A new user with member on a new project, and a token of theirs there:
    (user id, project id, token)."""
    user = await identity.create("user", name=name, password="pw")
    proj = await identity.create("project", name=project)
    member = await identity.id_of("role", "member")
    await identity.call("PUT", f"/projects/{proj['id']}/users/{user['id']}/roles/{member}")
    resp = await identity.client.post(f"{V3}/auth/tokens",
                                      json=password_body(name, "pw", project))
    assert resp.status_code == 201
    return user["id"], proj["id"], resp.headers["X-Subject-Token"]


async def compute_status(identity: IdentityApi, token: str) -> int:
    resp = await identity.client.get(SERVERS, headers={"X-Auth-Token": token})
    return resp.status_code


Revoker = Callable[[IdentityApi, str, str], Awaitable[None]]


async def _disable_user(identity: IdentityApi, user_id: str, project_id: str) -> None:
    resp = await identity.call("PATCH", f"/users/{user_id}", json={"user": {"enabled": False}})
    assert resp.status_code == 200


async def _delete_user(identity: IdentityApi, user_id: str, project_id: str) -> None:
    assert (await identity.call("DELETE", f"/users/{user_id}")).status_code == 204


async def _set_password(identity: IdentityApi, user_id: str, project_id: str) -> None:
    resp = await identity.call("PATCH", f"/users/{user_id}", json={"user": {"password": "new"}})
    assert resp.status_code == 200


async def _disable_project(identity: IdentityApi, user_id: str, project_id: str) -> None:
    resp = await identity.call("PATCH", f"/projects/{project_id}",
                               json={"project": {"enabled": False}})
    assert resp.status_code == 200


async def _delete_project(identity: IdentityApi, user_id: str, project_id: str) -> None:
    assert (await identity.call("DELETE", f"/projects/{project_id}")).status_code == 204


async def _remove_role(identity: IdentityApi, user_id: str, project_id: str) -> None:
    member = await identity.id_of("role", "member")
    resp = await identity.call("DELETE", f"/projects/{project_id}/users/{user_id}/roles/{member}")
    assert resp.status_code == 204


@pytest.mark.parametrize("revoke", [_disable_user, _delete_user, _set_password,
                                    _disable_project, _delete_project, _remove_role])
async def test_an_issued_token_is_revoked(identity: IdentityApi, revoke: Revoker) -> None:
    user_id, project_id, token = await user_token(identity)
    assert await compute_status(identity, token) == 200
    await revoke(identity, user_id, project_id)
    assert await compute_status(identity, token) == 401
    resp = await identity.call("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 404


async def test_a_role_removal_spares_tokens_on_other_projects(identity: IdentityApi) -> None:
    user_id, project_id, token = await user_token(identity)
    other = await identity.create("project", name="other")
    member = await identity.id_of("role", "member")
    await identity.call("PUT", f"/projects/{other['id']}/users/{user_id}/roles/{member}")
    resp = await identity.client.post(f"{V3}/auth/tokens",
                                      json=password_body("erin", "pw", "other"))
    other_token = resp.headers["X-Subject-Token"]
    await _remove_role(identity, user_id, project_id)
    assert await compute_status(identity, token) == 401
    assert await compute_status(identity, other_token) == 200


async def test_deleting_a_role_revokes_the_tokens_that_carry_it(
        identity: IdentityApi) -> None:
    """A role held through a group is in the member's token; deleting the role
    ends that token, and spares users who never held it."""
    user_id, project_id, _ = await user_token(identity)
    group = await identity.create("group", name="auditors")
    role = await identity.create("role", name="auditor")
    assert (await identity.call("PUT", f"/groups/{group['id']}/users/{user_id}")
            ).status_code == 204
    grant = f"/projects/{project_id}/groups/{group['id']}/roles/{role['id']}"
    assert (await identity.call("PUT", grant)).status_code == 204
    resp = await identity.client.post(f"{V3}/auth/tokens",
                                      json=password_body("erin", "pw", "erinp"))
    token = resp.headers["X-Subject-Token"]
    assert "auditor" in [r["name"] for r in resp.json()["token"]["roles"]]
    bystander = await identity.token("demo")
    assert (await identity.call("DELETE", f"/roles/{role['id']}")).status_code == 204
    assert await compute_status(identity, token) == 401
    assert await compute_status(identity, bystander) == 200


async def test_a_user_changing_their_password_revokes_their_tokens(
        identity: IdentityApi) -> None:
    user_id, _, token = await user_token(identity)
    resp = await identity.client.post(
        f"{V3}/users/{user_id}/password", headers={"X-Auth-Token": token},
        json={"user": {"original_password": "pw", "password": "pw2"}})
    assert resp.status_code == 204
    assert await compute_status(identity, token) == 401
    resp = await identity.client.post(f"{V3}/auth/tokens",
                                      json=password_body("erin", "pw2", "erinp"))
    assert await compute_status(identity, resp.headers["X-Subject-Token"]) == 200


async def test_delete_auth_tokens_revokes_one_token(identity: IdentityApi) -> None:
    _, _, token = await user_token(identity)
    resp = await identity.client.post(f"{V3}/auth/tokens",
                                      json=password_body("erin", "pw", "erinp"))
    second = resp.headers["X-Subject-Token"]
    # the owner revokes their own token; the token made from it goes too
    resp = await identity.client.post(f"{V3}/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": token}}, "scope": {"project": {
            "name": "erinp", "domain": {"id": "default"}}}}})
    rescoped = resp.headers["X-Subject-Token"]
    resp = await identity.client.delete(f"{V3}/auth/tokens", headers={
        "X-Auth-Token": second, "X-Subject-Token": token})
    assert resp.status_code == 204
    resp = await identity.client.get(f"{V3}/auth/tokens", headers={
        "X-Auth-Token": second, "X-Subject-Token": token})
    assert resp.status_code == 404
    assert await compute_status(identity, token) == 401
    assert await compute_status(identity, rescoped) == 401
    assert await compute_status(identity, second) == 200
    # someone else's token takes an admin; a revoked one is 404
    resp = await identity.call("DELETE", "/auth/tokens", user="demo",
                               headers={"X-Subject-Token": second})
    assert resp.status_code == 403
    resp = await identity.call("DELETE", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 404
    resp = await identity.call("DELETE", "/auth/tokens", headers={"X-Subject-Token": second})
    assert resp.status_code == 204
    assert await compute_status(identity, second) == 401


async def test_another_api_process_sees_a_revocation_within_the_refresh(
        api: Api, identity: IdentityApi) -> None:
    """A second process's cache (here: the service's, made stale, and its generation
    check fooled as if the bump were lost) rereads the events after the refresh;
    tests/unit/db/test_cache_generations.py shows the bump makes it at once."""
    _, _, token = await user_token(identity)
    assert await compute_status(identity, token) == 200
    revocations = api.cloud.services.identity.revocations
    kept = {k: list(v) for k, v in revocations._events.items()}
    await identity.call("DELETE", "/auth/tokens", headers={"X-Subject-Token": token})
    revocations._events = kept  # as if another process had written the event
    revocations._generation = await revocations.generation.current()  # ...and no bump
    assert await compute_status(identity, token) == 200  # within the refresh bound
    revocations._loaded_at = float("-inf")  # the bound has passed
    assert await compute_status(identity, token) == 401
