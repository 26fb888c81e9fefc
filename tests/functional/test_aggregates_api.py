"""os-aggregates: CRUD, host and metadata actions, zone rules, microversions, policy."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api, boot

AGG = "/compute/v2.1/os-aggregates"


async def _create(api: Api, name: str, zone: str | None = None, version: str = "2.41"
                  ) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if zone is not None:
        body["availability_zone"] = zone
    resp = await api.request("POST", AGG, user="admin", version=version,
                             json={"aggregate": body})
    assert resp.status_code == 200, resp.text
    aggregate: dict[str, Any] = resp.json()["aggregate"]
    return aggregate


async def _action(api: Api, agg_id: int, body: dict[str, Any], version: str = "2.41"
                  ) -> Any:
    return await api.request("POST", f"{AGG}/{agg_id}/action", user="admin",
                             version=version, json=body)


async def test_crud(api: Api) -> None:
    created = await _create(api, "fast", "zone-a")
    assert created["name"] == "fast" and created["availability_zone"] == "zone-a"
    assert created["deleted"] is False and "hosts" not in created and "uuid" in created
    agg_id = created["id"]

    resp = await api.request("GET", f"{AGG}/{agg_id}", user="admin", version="2.41")
    shown = resp.json()["aggregate"]
    assert shown["hosts"] == [] and shown["metadata"] == {"availability_zone": "zone-a"}
    assert shown["uuid"] == created["uuid"]

    resp = await api.request("PUT", f"{AGG}/{agg_id}", user="admin",
                             json={"aggregate": {"name": "faster"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["aggregate"]["name"] == "faster"
    assert resp.json()["aggregate"]["availability_zone"] == "zone-a"

    listed = (await api.request("GET", AGG, user="admin")).json()["aggregates"]
    assert [a["name"] for a in listed] == ["faster"]

    resp = await api.request("DELETE", f"{AGG}/{agg_id}", user="admin")
    assert resp.status_code == 200, resp.text
    resp = await api.request("GET", f"{AGG}/{agg_id}", user="admin")
    assert resp.status_code == 404
    assert "could not be found" in resp.json()["itemNotFound"]["message"]


async def test_uuid_only_from_2_41(api: Api) -> None:
    created = await _create(api, "old", version="2.40")
    assert "uuid" not in created
    resp = await api.request("GET", f"{AGG}/{created['id']}", user="admin", version="2.40")
    assert "uuid" not in resp.json()["aggregate"]
    resp = await api.request("GET", f"{AGG}/{created['id']}", user="admin", version="2.41")
    assert "uuid" in resp.json()["aggregate"]


async def test_duplicate_name_conflicts(api: Api) -> None:
    await _create(api, "dup")
    resp = await api.request("POST", AGG, user="admin", json={"aggregate": {"name": "dup"}})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == "Aggregate dup already exists."
    other = await _create(api, "other")
    resp = await api.request("PUT", f"{AGG}/{other['id']}", user="admin",
                             json={"aggregate": {"name": "dup"}})
    assert resp.status_code == 409


async def test_bad_bodies(api: Api) -> None:
    for body in [{}, {"aggregate": {}}, {"aggregate": {"name": ""}},
                 {"aggregate": {"name": "x", "bogus": 1}},
                 {"aggregate": {"name": "x", "availability_zone": "a:b"}},
                 {"aggregate": {"name": "x" * 256}}]:
        resp = await api.request("POST", AGG, user="admin", json=body)
        assert resp.status_code == 400, (body, resp.text)
    agg = await _create(api, "a")
    resp = await api.request("PUT", f"{AGG}/{agg['id']}", user="admin",
                             json={"aggregate": {}})
    assert resp.status_code == 400
    bad_actions: list[dict[str, Any]] = [
        {"bogus": {}}, {"add_host": {}}, {"add_host": {"host": "h", "x": 1}},
        {"set_metadata": {"metadata": {"k": 5}}}, {"set_metadata": {}},
        {"add_host": {"host": "h"}, "remove_host": {"host": "h"}}]
    for body in bad_actions:
        resp = await _action(api, agg["id"], body)
        assert resp.status_code == 400, (body, resp.text)
    for bad_id in ["abc", "0", "99999999999"]:
        resp = await api.request("GET", f"{AGG}/{bad_id}", user="admin")
        assert resp.status_code == 404, resp.text


async def test_host_actions_and_errors(api: Api) -> None:
    agg = await _create(api, "hosts")
    resp = await _action(api, agg["id"], {"add_host": {"host": "fake-host-1"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["aggregate"]["hosts"] == ["fake-host-1"]

    resp = await _action(api, agg["id"], {"add_host": {"host": "fake-host-1"}})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Aggregate {agg['id']} already has host fake-host-1.")

    resp = await _action(api, agg["id"], {"add_host": {"host": "no-such-host"}})
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        "Compute host no-such-host could not be found.")

    resp = await _action(api, 4242, {"add_host": {"host": "fake-host-1"}})
    assert resp.status_code == 404

    resp = await api.request("DELETE", f"{AGG}/{agg['id']}", user="admin")
    assert resp.status_code == 400
    assert "Host aggregate is not empty" in resp.json()["badRequest"]["message"]

    resp = await _action(api, agg["id"], {"remove_host": {"host": "fake-host-1"}})
    assert resp.status_code == 200 and resp.json()["aggregate"]["hosts"] == []
    resp = await _action(api, agg["id"], {"remove_host": {"host": "fake-host-1"}})
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        f"Aggregate {agg['id']} has no host fake-host-1.")
    resp = await api.request("DELETE", f"{AGG}/{agg['id']}", user="admin")
    assert resp.status_code == 200


async def test_set_metadata_null_deletes(api: Api) -> None:
    agg = await _create(api, "meta")
    resp = await _action(api, agg["id"], {"set_metadata": {"metadata": {
        "ssd": "true", "gpu": "1"}}})
    assert resp.json()["aggregate"]["metadata"] == {"ssd": "true", "gpu": "1"}
    resp = await _action(api, agg["id"], {"set_metadata": {"metadata": {
        "gpu": None, "ssd": "false", "missing": None}}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["aggregate"]["metadata"] == {"ssd": "false"}
    resp = await _action(api, agg["id"], {"set_metadata": {"metadata": {
        "availability_zone": "zone-m"}}})
    assert resp.json()["aggregate"]["availability_zone"] == "zone-m"
    # A zone can be changed, never emptied (as Nova).
    resp = await _action(api, agg["id"], {"set_metadata": {"metadata": {
        "availability_zone": None}}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        f"Cannot update metadata of aggregate {agg['id']}. Reason: Aggregate meta does "
        "not support empty named availability zone.")
    resp = await api.request("PUT", f"{AGG}/{agg['id']}", user="admin",
                             json={"aggregate": {"availability_zone": None}})
    assert resp.status_code == 400


async def test_a_host_is_in_one_zone_only(api: Api) -> None:
    east = await _create(api, "east", "zone-east")
    west = await _create(api, "west", "zone-west")
    plain = await _create(api, "plain")
    assert (await _action(api, east["id"], {"add_host": {"host": "fake-host-1"}})
            ).status_code == 200
    resp = await _action(api, west["id"], {"add_host": {"host": "fake-host-1"}})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Cannot add host to aggregate {west['id']}. Reason: One or more hosts already "
        "in availability zone(s) ['zone-east'].")
    # An aggregate without a zone, or of the same zone, takes it.
    assert (await _action(api, plain["id"], {"add_host": {"host": "fake-host-1"}})
            ).status_code == 200
    same = await _create(api, "east-2", "zone-east")
    assert (await _action(api, same["id"], {"add_host": {"host": "fake-host-1"}})
            ).status_code == 200
    # Giving the plain aggregate another zone would put the host in two.
    resp = await api.request("PUT", f"{AGG}/{plain['id']}", user="admin",
                             json={"aggregate": {"availability_zone": "zone-west"}})
    assert resp.status_code == 400
    assert "already in availability zone(s)" in resp.json()["badRequest"]["message"]
    resp = await _action(api, plain["id"], {"set_metadata": {"metadata": {
        "availability_zone": "zone-west"}}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"].startswith(
        f"Cannot update metadata of aggregate {plain['id']}.")


async def test_admin_only(api: Api) -> None:
    agg = await _create(api, "secret")
    for method, path, body in [("GET", AGG, None), ("POST", AGG, {"aggregate": {"name": "x"}}),
                               ("GET", f"{AGG}/{agg['id']}", None),
                               ("PUT", f"{AGG}/{agg['id']}", {"aggregate": {"name": "y"}}),
                               ("DELETE", f"{AGG}/{agg['id']}", None),
                               ("POST", f"{AGG}/{agg['id']}/action",
                                {"add_host": {"host": "fake-host-1"}})]:
        resp = await api.request(method, path, user="demo", json=body)
        assert resp.status_code == 403, (method, path, resp.text)


async def test_zone_of_hosts_with_servers_stays(api: Api) -> None:
    agg = await _create(api, "busy", "zone-b")
    assert (await _action(api, agg["id"], {"add_host": {"host": "fake-host-1"}})
            ).status_code == 200
    await boot(api, availability_zone="zone-b")
    resp = await api.request("PUT", f"{AGG}/{agg['id']}", user="admin",
                             json={"aggregate": {"availability_zone": "zone-c"}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        f"Cannot update aggregate {agg['id']}. Reason: One or more hosts contain "
        "instances in this zone.")
    resp = await _action(api, agg["id"], {"set_metadata": {"metadata": {
        "availability_zone": None}}})
    assert resp.status_code == 400
    # Renaming, other metadata and the same zone are fine.
    resp = await api.request("PUT", f"{AGG}/{agg['id']}", user="admin",
                             json={"aggregate": {"name": "still-busy",
                                                 "availability_zone": "zone-b"}})
    assert resp.status_code == 200, resp.text
    resp = await _action(api, agg["id"], {"set_metadata": {"metadata": {"ssd": "1"}}})
    assert resp.status_code == 200, resp.text
