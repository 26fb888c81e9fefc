"""Flavors through the HTTP API: Nova's shapes per microversion, management, access, specs."""

from typing import Any

import pytest

from tests.functional.conftest import Api, boot, ensure_image

F = "/compute/v2.1/flavors"
BASE = "http://novalet.test/compute"
PRIVATE: dict[str, Any] = {"os-flavor-access:is_public": False}
_ABSENT = object()


async def _project_id(api: Api, name: str) -> str:
    (project,) = await api.cloud.services.identity.list_projects(name=name)
    return project.id


async def _add_member(api: Api, name: str) -> str:
    """A project and a member user, both called `name` (password `name`)."""
    identity = api.cloud.services.identity
    project = await identity.create_project({"name": name})
    user = await identity.create_user({"name": name, "password": name,
                                       "default_project_id": project.id})
    role = await identity.find_role("member")
    assert role is not None
    await identity.grant(user.id, project.id, role.id)
    return project.id


async def _create(api: Api, version: str = "2.1", **flavor: Any) -> dict[str, Any]:
    body = {"name": "f1", "ram": 256, "vcpus": 1, "disk": 1, **flavor}
    resp = await api.request("POST", F, user="admin", version=version, json={"flavor": body})
    assert resp.status_code == 200, resp.text
    return resp.json()["flavor"]


async def test_list_shows_standard_flavors_with_links(api: Api) -> None:
    resp = await api.request("GET", F)
    assert resp.status_code == 200
    flavors = resp.json()["flavors"]
    assert [(f["id"], f["name"]) for f in flavors] == [
        ("1", "m1.tiny"), ("2", "m1.small"), ("3", "m1.medium"), ("4", "m1.large"),
        ("5", "m1.xlarge")]
    assert flavors[0] == {"id": "1", "name": "m1.tiny", "links": [
        {"rel": "self", "href": f"{BASE}/v2.1/flavors/1"},
        {"rel": "bookmark", "href": f"{BASE}/flavors/1"}]}
    assert "flavors_links" not in resp.json()


async def test_detail_shape_across_microversions(api: Api) -> None:
    old = (await api.request("GET", f"{F}/detail")).json()["flavors"][0]
    assert old == {"id": "1", "name": "m1.tiny", "ram": 512, "disk": 1, "vcpus": 1,
                   "swap": "", "OS-FLV-EXT-DATA:ephemeral": 0,
                   "OS-FLV-DISABLED:disabled": False, "os-flavor-access:is_public": True,
                   "rxtx_factor": 1.0, "links": old["links"]}
    v255 = (await api.request("GET", f"{F}/detail", version="2.55")).json()["flavors"][0]
    assert v255["description"] is None and "extra_specs" not in v255
    v261 = (await api.request("GET", f"{F}/1", version="2.61")).json()["flavor"]
    assert v261["extra_specs"] == {} and v261["swap"] == ""
    v275 = (await api.request("GET", f"{F}/1", version="2.75")).json()["flavor"]
    assert v275["swap"] == 0
    brief = (await api.request("GET", F, version="2.55")).json()["flavors"][0]
    assert set(brief) == {"id", "name", "links", "description"}


@pytest.mark.parametrize(("before", "after", "field", "old", "new"), [
    ("2.54", "2.55", "description", _ABSENT, None),
    ("2.60", "2.61", "extra_specs", _ABSENT, {}),
    ("2.74", "2.75", "swap", "", 0),
])
async def test_flavor_body_on_each_side_of_a_boundary(api: Api, before: str, after: str,
                                                      field: str, old: Any, new: Any) -> None:
    for version, expected in ((before, old), (after, new)):
        flavor = (await api.request("GET", f"{F}/1", version=version)).json()["flavor"]
        assert flavor.get(field, _ABSENT) == expected, version


async def test_show_missing_flavor_is_404(api: Api) -> None:
    resp = await api.request("GET", f"{F}/nope")
    assert resp.status_code == 404
    assert resp.json() == {"itemNotFound": {"code": 404,
                                            "message": "Flavor nope could not be found."}}


async def test_create_with_generated_id_and_all_fields(api: Api) -> None:
    flavor = await _create(api, "2.75", name="big", ram="1024", vcpus=2, disk=10, swap=512,
                           rxtx_factor=2, **{"OS-FLV-EXT-DATA:ephemeral": 5,
                                             "os-flavor-access:is_public": "false"})
    assert len(flavor["id"]) == 36
    assert (flavor["ram"], flavor["vcpus"], flavor["disk"], flavor["swap"]) == (1024, 2, 10, 512)
    assert flavor["OS-FLV-EXT-DATA:ephemeral"] == 5 and flavor["rxtx_factor"] == 2.0
    assert flavor["os-flavor-access:is_public"] is False
    shown = (await api.request("GET", f"{F}/{flavor['id']}", user="admin", version="2.75"))
    assert shown.json()["flavor"] == flavor


async def test_create_numeric_id_becomes_a_string(api: Api) -> None:
    assert (await _create(api, id=42))["id"] == "42"


async def test_create_is_admin_only_and_validated(api: Api) -> None:
    body = {"flavor": {"name": "f", "ram": 256, "vcpus": 1, "disk": 1}}
    resp = await api.request("POST", F, json=body)
    assert resp.status_code == 403
    assert "os_compute_api:os-flavor-manage:create" in resp.json()["forbidden"]["message"]
    for bad in ({"ram": 0}, {"vcpus": "0"}, {"disk": -1}, {"rxtx_factor": 0},
                {"name": " padded"}, {"id": "bad/id"}, {"description": "too early"},
                {"unknown": 1}):
        resp = await api.request("POST", F, user="admin",
                                 json={"flavor": {**body["flavor"], **bad}})
        assert resp.status_code == 400, (bad, resp.text)
        assert "badRequest" in resp.json()
    resp = await api.request("POST", F, user="admin", json={"flavor": {"name": "f"}})
    assert resp.status_code == 400


async def test_duplicate_name_and_id_are_conflicts(api: Api) -> None:
    await _create(api, name="dup", id="dup-id")
    resp = await api.request("POST", F, user="admin", json={"flavor": {
        "name": "dup", "ram": 1, "vcpus": 1, "disk": 0}})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        "Flavor with name dup already exists.")
    resp = await api.request("POST", F, user="admin", json={"flavor": {
        "name": "other", "id": "dup-id", "ram": 1, "vcpus": 1, "disk": 0}})
    assert resp.json()["conflictingRequest"]["message"] == (
        "Flavor with ID dup-id already exists.")


async def test_description_and_update_from_255(api: Api) -> None:
    flavor = await _create(api, "2.55", description="first")
    assert flavor["description"] == "first"
    url = f"{F}/{flavor['id']}"
    body = {"flavor": {"description": "second"}}
    assert (await api.request("PUT", url, user="admin", version="2.54", json=body)
            ).status_code == 404
    assert (await api.request("PUT", url, version="2.55", json=body)).status_code == 403
    resp = await api.request("PUT", url, user="admin", version="2.61", json=body)
    assert resp.status_code == 200
    assert resp.json()["flavor"]["description"] == "second"
    assert resp.json()["flavor"]["extra_specs"] == {}
    resp = await api.request("PUT", url, user="admin", version="2.55",
                             json={"flavor": {"name": "x"}})
    assert resp.status_code == 400
    resp = await api.request("PUT", f"{F}/nope", user="admin", version="2.55", json=body)
    assert resp.status_code == 404


async def test_delete(api: Api) -> None:
    flavor = await _create(api)
    url = f"{F}/{flavor['id']}"
    assert (await api.request("DELETE", url)).status_code == 403
    resp = await api.request("DELETE", url, user="admin")
    assert resp.status_code == 202 and resp.content == b""
    assert (await api.request("GET", url)).status_code == 404
    assert (await api.request("DELETE", url, user="admin")).status_code == 404


async def test_filters_sorting_and_paging(api: Api) -> None:
    async def ids(query: str, user: str = "demo", version: str = "2.1") -> list[str]:
        resp = await api.request("GET", f"{F}?{query}", user=user, version=version)
        assert resp.status_code == 200, resp.text
        return [f["id"] for f in resp.json()["flavors"]]

    assert await ids("minRam=4096") == ["3", "4", "5"]
    assert await ids("minDisk=80&minRam=1") == ["4", "5"]
    assert await ids("sort_key=memory_mb&sort_dir=desc") == ["5", "4", "3", "2", "1"]
    assert await ids("limit=2&marker=2") == ["3", "4"]
    assert await ids("bogus=1", version="2.74") == ["1", "2", "3", "4", "5"]
    resp = await api.request("GET", f"{F}/detail?limit=2&minRam=1")
    assert resp.json()["flavors_links"] == [{"rel": "next", "href":
                                             f"{BASE}/v2.1/flavors/detail?limit=2&minRam=1"
                                             "&marker=2"}]
    for bad, message in (("minRam=lots", "Invalid minRam filter [lots]"),
                         ("marker=nope", "marker [nope] not found"),
                         ("limit=-1", "-1 is less than the minimum of 0")):
        resp = await api.request("GET", f"{F}?{bad}")
        assert resp.status_code == 400
        assert message in resp.json()["badRequest"]["message"]
    for bad, version in (("sort_key=colour", "2.1"), ("sort_dir=up", "2.1"),
                         ("bogus=1", "2.75")):
        resp = await api.request("GET", f"{F}?{bad}", version=version)
        assert resp.status_code == 400, bad


async def test_is_public_filter_is_for_admins(api: Api) -> None:
    private = await _create(api, name="priv", id="p1", **PRIVATE)
    assert private["os-flavor-access:is_public"] is False

    async def ids(query: str, user: str) -> list[str]:
        return [f["id"] for f in (await api.request("GET", f"{F}?{query}", user=user)
                                  ).json()["flavors"]]

    assert "p1" not in await ids("", "admin")
    assert "p1" in await ids("is_public=none", "admin")
    assert await ids("is_public=false", "admin") == ["p1"]
    assert "p1" not in await ids("is_public=false", "demo")
    resp = await api.request("GET", f"{F}?is_public=maybe", user="admin")
    assert resp.json()["badRequest"]["message"] == "Invalid is_public filter [maybe]"


async def test_private_flavor_access_lifecycle(api: Api) -> None:
    await _create(api, name="priv", id="p1", **PRIVATE)
    demo = await _project_id(api, "demo")
    action = f"{F}/p1/action"
    assert (await api.request("GET", f"{F}/p1")).status_code == 404
    resp = await api.request("POST", action, user="admin",
                             json={"addTenantAccess": {"tenant": demo}})
    assert resp.status_code == 200
    assert resp.json() == {"flavor_access": [{"flavor_id": "p1", "tenant_id": demo}]}
    assert (await api.request("GET", f"{F}/p1")).json()["flavor"]["name"] == "priv"
    assert "p1" in [f["id"] for f in (await api.request("GET", F)).json()["flavors"]]
    resp = await api.request("GET", f"{F}/p1/os-flavor-access", user="admin")
    assert resp.json() == {"flavor_access": [{"flavor_id": "p1", "tenant_id": demo}]}
    resp = await api.request("POST", action, user="admin",
                             json={"addTenantAccess": {"tenant": demo}})
    assert resp.status_code == 409
    resp = await api.request("POST", action, user="admin",
                             json={"removeTenantAccess": {"tenant": demo}})
    assert resp.json() == {"flavor_access": []}
    resp = await api.request("POST", action, user="admin",
                             json={"removeTenantAccess": {"tenant": demo}})
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        f"Flavor access not found for p1 / {demo} combination.")
    assert (await api.request("GET", f"{F}/p1")).status_code == 404


async def test_access_errors(api: Api) -> None:
    demo = await _project_id(api, "demo")
    add = {"addTenantAccess": {"tenant": demo}}
    resp = await api.request("GET", f"{F}/1/os-flavor-access", user="admin")
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        "Access list not available for public flavors.")
    resp = await api.request("POST", f"{F}/1/action", user="admin", version="2.7", json=add)
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        "Can not add access to a public flavor.")
    resp = await api.request("POST", f"{F}/1/action", user="admin", version="2.6", json=add)
    assert resp.status_code == 200
    assert (await api.request("POST", f"{F}/1/action", json=add)).status_code == 403
    assert (await api.request("GET", f"{F}/1/os-flavor-access")).status_code == 403
    resp = await api.request("POST", f"{F}/1/action", user="admin",
                             json={"addTenantAccess": {"tenant": "no-such-project"}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "Project ID no-such-project is not a valid project.")
    resp = await api.request("POST", f"{F}/nope/action", user="admin", json=add)
    assert resp.status_code == 404
    resp = await api.request("POST", f"{F}/1/action", user="admin", json={"shrink": {}})
    assert resp.json()["badRequest"]["message"] == "There is no such action: shrink"
    resp = await api.request("POST", f"{F}/1/action", user="admin",
                             json={"addTenantAccess": {}})
    assert resp.status_code == 400


async def test_extra_specs_lifecycle(api: Api) -> None:
    specs = f"{F}/1/os-extra_specs"
    resp = await api.request("POST", specs, user="admin",
                             json={"extra_specs": {"hw:cpu_policy": "shared", "n": 2}})
    assert resp.status_code == 200
    assert resp.json() == {"extra_specs": {"hw:cpu_policy": "shared", "n": 2}}
    resp = await api.request("GET", specs)
    assert resp.json() == {"extra_specs": {"hw:cpu_policy": "shared", "n": "2"}}
    assert (await api.request("GET", f"{specs}/n")).json() == {"n": "2"}
    resp = await api.request("PUT", f"{specs}/n", user="admin", json={"n": "3"})
    assert resp.status_code == 200 and resp.json() == {"n": "3"}
    resp = await api.request("PUT", f"{specs}/n", user="admin", json={"m": "3"})
    assert resp.json()["badRequest"]["message"] == "Request body and URI mismatch"
    resp = await api.request("PUT", f"{specs}/n", user="admin", json={"n": "3", "m": "4"})
    assert resp.status_code == 400
    flavor = (await api.request("GET", f"{F}/1", version="2.61")).json()["flavor"]
    assert flavor["extra_specs"] == {"hw:cpu_policy": "shared", "n": "3"}
    resp = await api.request("DELETE", f"{specs}/n", user="admin")
    assert resp.status_code == 200
    resp = await api.request("GET", f"{specs}/n")
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        "Flavor 1 has no extra specs with key n.")
    assert (await api.request("DELETE", f"{specs}/n", user="admin")).status_code == 404


async def test_extra_specs_policy_and_validation(api: Api) -> None:
    specs = f"{F}/1/os-extra_specs"
    body = {"extra_specs": {"a": "b"}}
    assert (await api.request("POST", specs, json=body)).status_code == 403
    assert (await api.request("PUT", f"{specs}/a", json={"a": "b"})).status_code == 403
    assert (await api.request("DELETE", f"{specs}/a")).status_code == 403
    bad: dict[str, Any]
    for bad in ({"extra_specs": {"bad/key": "x"}}, {"extra_specs": {"k": "x" * 256}},
                {"extra_specs": {"k": True}}, {"specs": {}}):
        resp = await api.request("POST", specs, user="admin", json=bad)
        assert resp.status_code == 400, bad
    resp = await api.request("POST", f"{F}/nope/os-extra_specs", user="admin", json=body)
    assert resp.status_code == 404


async def test_boot_needs_access_to_a_private_flavor(api: Api) -> None:
    await _create(api, name="priv", id="p1", **PRIVATE)
    image_id = await ensure_image(api)
    body = {"server": {"name": "vm", "imageRef": image_id, "flavorRef": "p1",
                       "networks": "none"}}
    resp = await api.request("POST", "/compute/v2.1/servers", version="2.37", json=body)
    assert resp.status_code == 400
    assert "Flavor p1 could not be found." in resp.json()["badRequest"]["message"]
    await api.request("POST", f"{F}/p1/action", user="admin",
                      json={"addTenantAccess": {"tenant": await _project_id(api, "demo")}})
    server = await boot(api, flavorRef=f"{BASE}/v2.1/flavors/p1")
    assert server["flavor"]["original_name"] == "priv"


async def test_other_project_cannot_see_shared_flavor(api: Api) -> None:
    await _add_member(api, "alice")
    await _create(api, name="priv", id="p1", **PRIVATE)
    await api.request("POST", f"{F}/p1/action", user="admin",
                      json={"addTenantAccess": {"tenant": await _project_id(api, "demo")}})
    assert (await api.request("GET", f"{F}/p1", user="demo")).status_code == 200
    assert (await api.request("GET", f"{F}/p1", user="alice")).status_code == 404
    resp = await api.request("GET", f"{F}/p1/os-extra_specs", user="alice")
    assert resp.status_code == 404
