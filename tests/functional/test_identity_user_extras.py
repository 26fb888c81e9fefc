"""Users keep attributes Keystone does not know (Tempest creates its users with
`project_id`) and return them; bounded in number and size."""

from __future__ import annotations

import pytest

from novalet.identity import user_extras
from tests.functional.conftest import Api
from tests.functional.test_identity_api import IdentityApi


@pytest.fixture
def identity(api: Api) -> IdentityApi:
    return IdentityApi(api.client)


async def test_extra_attributes_are_kept_and_returned(identity: IdentityApi) -> None:
    project = await identity.create("project", name="p1")
    user = await identity.create("user", name="t1", password="pw", project_id=project["id"],
                                 email="t1@example.com", description="a tempest user",
                                 tags={"k": [1, 2]})
    assert user["project_id"] == project["id"] and user["description"] == "a tempest user"
    assert user["tags"] == {"k": [1, 2]} and user["email"] == "t1@example.com"
    assert "default_project_id" not in user  # a separate attribute
    shown = (await identity.call("GET", f"/users/{user['id']}")).json()["user"]
    assert shown["project_id"] == project["id"]
    resp = await identity.call("PATCH", f"/users/{user['id']}", json={"user": {
        "description": None, "team": "qa"}})
    assert resp.status_code == 200, resp.text
    updated = resp.json()["user"]
    assert (updated["project_id"], updated["team"]) == (project["id"], "qa")
    assert updated["description"] is None
    listed = (await identity.call("GET", "/users", params={"name": "t1"})).json()["users"]
    assert listed[0]["team"] == "qa"


async def test_extra_attributes_are_bounded(identity: IdentityApi) -> None:
    too_many = {f"a{i}": i for i in range(user_extras.MAX_ITEMS + 1)}
    bodies = [{"name": "x", **too_many}, {"name": "x", "id": "mine"},
              {"name": "x", "links": {}}, {"name": "x", "big": "y" * user_extras.MAX_BYTES},
              {"name": "x", "k" * 256: 1}]
    for body in bodies:
        resp = await identity.call("POST", "/users", json={"user": body})
        assert resp.status_code == 400, (list(body)[1][:10], resp.text)
    user = await identity.create("user", name="y", a0=0)
    resp = await identity.call("PATCH", f"/users/{user['id']}", json={"user": too_many})
    assert resp.status_code == 400
    resp = await identity.call("PATCH", f"/users/{user['id']}", json={"user": {
        "domain_id": "other"}})
    assert resp.status_code == 400 and "Cannot change Domain ID" in resp.text
    resp = await identity.call("POST", "/users", user="demo", json={"user": {
        "name": "z", "project_id": "p"}})
    assert resp.status_code == 403
