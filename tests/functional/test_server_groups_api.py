"""os-server-groups through the API: CRUD, microversions, bad input, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.conftest import Api
from tests.functional.test_policy_roles import make_user

URL = "/compute/v2.1/os-server-groups"


async def _create(api: Api, body: dict[str, Any], version: str = "2.64",
                  user: str = "demo") -> dict[str, Any]:
    resp = await api.request("POST", URL, user=user, version=version,
                             json={"server_group": body})
    assert resp.status_code == 200, resp.text
    group: dict[str, Any] = resp.json()["server_group"]
    return group


async def test_create_show_list_delete_at_264(api: Api) -> None:
    group = await _create(api, {"name": "web", "policy": "anti-affinity",
                                "rules": {"max_server_per_host": "3"}})
    assert group["policy"] == "anti-affinity"
    assert group["rules"] == {"max_server_per_host": 3}
    assert group["members"] == []
    assert set(group) == {"id", "name", "policy", "rules", "members", "project_id",
                          "user_id"}
    shown = (await api.request("GET", f"{URL}/{group['id']}", version="2.64")).json()
    assert shown["server_group"] == group
    listed = (await api.request("GET", URL, version="2.64")).json()["server_groups"]
    assert [g["id"] for g in listed] == [group["id"]]
    resp = await api.request("DELETE", f"{URL}/{group['id']}", version="2.64")
    assert resp.status_code == 204
    resp = await api.request("GET", f"{URL}/{group['id']}", version="2.64")
    assert resp.status_code == 404
    assert "could not be found" in resp.json()["itemNotFound"]["message"]


async def test_views_on_each_side_of_213_and_264(api: Api) -> None:
    group = await _create(api, {"name": "g", "policies": ["affinity"]}, version="2.1")
    assert group["policies"] == ["affinity"] and group["metadata"] == {}
    assert "project_id" not in group and "policy" not in group
    at_213 = (await api.request("GET", f"{URL}/{group['id']}", version="2.13")).json()
    assert at_213["server_group"]["project_id"] and at_213["server_group"]["user_id"]
    at_263 = (await api.request("GET", f"{URL}/{group['id']}", version="2.63")).json()
    assert "policies" in at_263["server_group"] and "rules" not in at_263["server_group"]
    at_264 = (await api.request("GET", f"{URL}/{group['id']}", version="2.64")).json()
    body = at_264["server_group"]
    assert body["policy"] == "affinity" and body["rules"] == {}
    assert "policies" not in body and "metadata" not in body


async def test_soft_policies_need_215(api: Api) -> None:
    resp = await api.request("POST", URL, version="2.14", json={
        "server_group": {"name": "g", "policies": ["soft-affinity"]}})
    assert resp.status_code == 400
    group = await _create(api, {"name": "g", "policies": ["soft-anti-affinity"]},
                          version="2.15")
    assert group["policies"] == ["soft-anti-affinity"]


@pytest.mark.parametrize(("version", "body"), [
    ("2.64", {"name": "g", "policy": "best-effort"}),
    ("2.64", {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}),
    ("2.64", {"name": "g", "policy": "soft-anti-affinity",
              "rules": {"max_server_per_host": 2}}),
    ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}),
    ("2.64", {"name": "g", "policy": "anti-affinity",
              "rules": {"max_server_per_host": "two"}}),
    ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"other": 1}}),
    ("2.64", {"name": "g", "policies": ["affinity"]}),
    ("2.64", {"policy": "affinity"}),
    ("2.63", {"name": "g", "policy": "affinity"}),
    ("2.63", {"name": "g", "policies": ["affinity", "anti-affinity"]}),
    ("2.63", {"name": "g", "policies": []}),
    ("2.1", {"name": "", "policies": ["affinity"]}),
    ("2.1", {"name": "g", "policies": ["affinity"], "extra": 1}),
])
async def test_bad_create_bodies_are_400(api: Api, version: str, body: dict[str, Any]
                                         ) -> None:
    resp = await api.request("POST", URL, version=version, json={"server_group": body})
    assert resp.status_code == 400, resp.text


async def test_rules_with_affinity_message(api: Api) -> None:
    resp = await api.request("POST", URL, version="2.64", json={"server_group": {
        "name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}})
    assert resp.status_code == 400
    assert "Only anti-affinity policy supports rules" in resp.json()["badRequest"]["message"]


async def test_other_project_group_is_404_and_not_listed(api: Api) -> None:
    group = await _create(api, {"name": "private", "policy": "affinity"}, user="admin")
    for method in ("GET", "DELETE"):
        resp = await api.request(method, f"{URL}/{group['id']}", version="2.64")
        assert resp.status_code == 404, (method, resp.text)
    listed = (await api.request("GET", URL, version="2.64")).json()["server_groups"]
    assert listed == []
    # all_projects is an admin's: a member asking gets their own project's only.
    listed = (await api.request("GET", URL + "?all_projects=True", version="2.64")
              ).json()["server_groups"]
    assert listed == []


async def test_admin_lists_all_projects_and_pages(api: Api) -> None:
    mine = [await _create(api, {"name": f"g{i}", "policy": "affinity"}) for i in range(3)]
    admins = await _create(api, {"name": "a", "policy": "affinity"}, user="admin")
    own = (await api.request("GET", URL, user="admin", version="2.64")).json()
    assert [g["id"] for g in own["server_groups"]] == [admins["id"]]
    every = (await api.request("GET", URL + "?all_projects=True", user="admin",
                               version="2.64")).json()["server_groups"]
    assert {g["id"] for g in every} == {g["id"] for g in [*mine, admins]}
    page = (await api.request("GET", URL + "?limit=1&offset=1", version="2.64")).json()
    assert [g["id"] for g in page["server_groups"]] == [mine[1]["id"]]
    # An admin can show and delete another project's group.
    resp = await api.request("GET", f"{URL}/{mine[0]['id']}", user="admin", version="2.64")
    assert resp.status_code == 200
    resp = await api.request("DELETE", f"{URL}/{mine[0]['id']}", user="admin")
    assert resp.status_code == 204


@pytest.mark.parametrize("query", ["limit=-1", "offset=x", "limit=abc"])
async def test_bad_list_queries_are_400(api: Api, query: str) -> None:
    resp = await api.request("GET", f"{URL}?{query}", version="2.64")
    assert resp.status_code == 400, resp.text


async def test_unknown_list_parameter_is_400_from_275(api: Api) -> None:
    resp = await api.request("GET", f"{URL}?foo=1", version="2.74")
    assert resp.status_code == 200
    resp = await api.request("GET", f"{URL}?foo=1", version="2.75")
    assert resp.status_code == 400


async def test_server_groups_quota(api: Api) -> None:
    resp = await api.request("PUT", "/compute/v2.1/os-quota-sets/"
                             + (await _project_id(api)), user="admin",
                             json={"quota_set": {"server_groups": 2}})
    assert resp.status_code == 200, resp.text
    for i in range(2):
        await _create(api, {"name": f"g{i}", "policy": "affinity"})
    resp = await api.request("POST", URL, version="2.64", json={"server_group": {
        "name": "one-too-many", "policy": "affinity"}})
    assert resp.status_code == 403
    assert resp.json()["forbidden"]["message"] == "Quota exceeded, too many server groups."


async def _project_id(api: Api) -> str:
    group = await _create(api, {"name": "probe", "policy": "affinity"})
    await api.request("DELETE", f"{URL}/{group['id']}")
    project: str = group["project_id"]
    return project


async def test_a_reader_lists_and_shows_but_neither_creates_nor_deletes(api: Api) -> None:
    group = await _create(api, {"name": "seen", "policy": "affinity"})
    await make_user(api, "group-reader", "reader")
    listed = await api.request("GET", URL, user="group-reader", version="2.64")
    assert [g["id"] for g in listed.json()["server_groups"]] == [group["id"]]
    shown = await api.request("GET", f"{URL}/{group['id']}", user="group-reader")
    assert shown.status_code == 200
    resp = await api.request("POST", URL, user="group-reader", version="2.64",
                             json={"server_group": {"name": "no", "policy": "affinity"}})
    assert resp.status_code == 403
    assert "os_compute_api:os-server-groups:create" in resp.json()["forbidden"]["message"]
    resp = await api.request("DELETE", f"{URL}/{group['id']}", user="group-reader")
    assert resp.status_code == 403
    assert "os_compute_api:os-server-groups:delete" in resp.json()["forbidden"]["message"]
