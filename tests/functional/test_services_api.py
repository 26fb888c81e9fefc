"""os-services through the HTTP API: Nova's shapes per microversion, enabling, disabling
and forcing down compute services (which the scheduler obeys), deleting services."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from novalet.common.timeutils import utcnow
from novalet.db import placement, services
from novalet.db.models import Service
from tests.functional.conftest import Api, boot

S = "/compute/v2.1/os-services"
HOST = "fake-host-1"
COMPUTE = {"host": HOST, "binary": "nova-compute"}


def _error(resp: httpx.Response, code: int) -> str:
    assert resp.status_code == code, resp.text
    (body,) = resp.json().values()
    assert body["code"] == code
    return str(body["message"])


async def _list(api: Api, version: str = "2.1", query: str = "") -> list[dict[str, Any]]:
    resp = await api.request("GET", f"{S}{query}", user="admin", version=version)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["services"])


async def _compute(api: Api, version: str = "2.53") -> dict[str, Any]:
    (service,) = await _list(api, version, "?binary=nova-compute&host=" + HOST)
    return service


async def _put(api: Api, path: str, body: dict[str, Any], version: str = "2.1"
               ) -> httpx.Response:
    return await api.request("PUT", f"{S}/{path}", user="admin", version=version, json=body)


async def _add_service(api: Api, host: str, binary: str) -> Service:
    """A service record as a running binary's first heartbeat makes it."""
    return await services.heartbeat(api.cloud.services.db, host, binary, binary[5:])


# --- listing ---------------------------------------------------------------------


async def test_list_shows_the_compute_host_up_in_its_zone(api: Api) -> None:
    listed = await _list(api)
    (service,) = [s for s in listed if s["binary"] == "nova-compute"]
    assert service == {"id": service["id"], "binary": "nova-compute", "host": HOST,
                       "zone": "nova", "status": "enabled", "state": "up",
                       "updated_at": service["updated_at"], "disabled_reason": None}
    assert isinstance(service["id"], int)
    heard = dt.datetime.fromisoformat(service["updated_at"])
    assert abs((utcnow() - heard).total_seconds()) < 60
    assert len(service["updated_at"]) == len("2026-01-01T00:00:00.000000")
    # The cloud's other services (conductor, scheduler …) live in the internal zone.
    for other in listed:
        assert other["state"] == "up" and other["status"] == "enabled"
        assert other["zone"] == ("nova" if other is service else "internal")


@pytest.mark.parametrize(("version", "forced_down", "uuid_id"), [
    ("2.1", False, False), ("2.10", False, False), ("2.11", True, False),
    ("2.52", True, False), ("2.53", True, True), ("2.100", True, True)])
async def test_list_shape_by_microversion(api: Api, version: str, forced_down: bool,
                                          uuid_id: bool) -> None:
    service = await _compute(api, version)
    assert ("forced_down" in service) is forced_down
    if forced_down:
        assert service["forced_down"] is False
    if uuid_id:
        assert str(uuid.UUID(service["id"])) == service["id"]
    else:
        assert isinstance(service["id"], int)


async def test_zones_of_any_binary_and_filters(api: Api) -> None:
    before = len(await _list(api))
    await _add_service(api, "ctl-1", "nova-conductor")
    await _add_service(api, "ctl-1", "nova-scheduler")
    await _add_service(api, "ctl-1", "nova-osapi_compute")  # API services are never listed
    await _add_service(api, "fake-host-2", "nova-compute")  # no provider: default zone
    await placement.upsert_provider(api.cloud.services.db, str(uuid.uuid4()), "node-3",
                                    "fake-host-3", "az3", {"VCPU": (4, 0, 1.0)})
    await _add_service(api, "fake-host-3", "nova-compute")

    def zones(found: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return [(s["host"], s["binary"], s["zone"]) for s in found]

    assert zones(await _list(api, query="?host=ctl-1")) == [
        ("ctl-1", "nova-conductor", "internal"), ("ctl-1", "nova-scheduler", "internal")]
    assert zones(await _list(api, query="?binary=nova-compute")) == [
        (HOST, "nova-compute", "nova"), ("fake-host-2", "nova-compute", "nova"),
        ("fake-host-3", "nova-compute", "az3")]
    assert zones(await _list(api, "2.53", "?host=ctl-1&binary=nova-scheduler")) == [
        ("ctl-1", "nova-scheduler", "internal")]
    assert await _list(api, query="?host=nowhere") == []
    assert await _list(api, query="?binary=nova-osapi_compute") == []
    everything = await _list(api, query="?host=&binary=&unknown=1")  # others are ignored
    assert len(everything) == before + 4
    assert all(s["state"] == "up" and s["status"] == "enabled" for s in everything)


async def test_a_service_without_recent_heartbeats_is_down(api: Api) -> None:
    await _add_service(api, "ctl-1", "nova-conductor")
    async with api.cloud.services.db.transaction() as s:
        await s.execute(update(Service).where(Service.host == "ctl-1").values(
            last_seen_up=utcnow() - dt.timedelta(minutes=5)))
    states = {(s["host"], s["binary"]): s["state"]
              for s in await _list(api, query="?binary=nova-conductor")}
    assert states == {(HOST, "nova-conductor"): "up", ("ctl-1", "nova-conductor"): "down"}


# --- the actions below 2.53 ------------------------------------------------------


async def test_disable_with_reason_stops_scheduling_until_enabled(api: Api) -> None:
    resp = await _put(api, "disable-log-reason", {**COMPUTE, "disabled_reason": "maintenance"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"service": {**COMPUTE, "status": "disabled",
                                       "disabled_reason": "maintenance"}}
    service = await _compute(api, "2.1")
    assert (service["status"], service["state"], service["disabled_reason"]) == (
        "disabled", "up", "maintenance")

    server = await boot(api, "refused", wait="ERROR")
    assert "No valid host was found" in server["fault"]["message"]
    assert (f"ComputeFilter removed 1 host(s): {HOST} (compute service disabled "
            "(maintenance))") in server["fault"]["message"]

    resp = await _put(api, "enable", COMPUTE)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"service": {**COMPUTE, "status": "enabled"}}
    service = await _compute(api, "2.1")
    assert (service["status"], service["disabled_reason"]) == ("enabled", None)
    assert (await boot(api, "welcome"))["status"] == "ACTIVE"


async def test_disable_without_reason(api: Api) -> None:
    resp = await _put(api, "disable", COMPUTE, version="2.52")
    assert resp.json() == {"service": {**COMPUTE, "status": "disabled"}}
    service = await _compute(api, "2.52")
    assert (service["status"], service["disabled_reason"]) == ("disabled", None)


async def test_force_down_from_211(api: Api) -> None:
    body = {**COMPUTE, "forced_down": True}
    assert "Unknown action force-down" in _error(
        await _put(api, "force-down", COMPUTE, version="2.10"), 404)
    resp = await _put(api, "force-down", body, version="2.11")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"service": body}
    service = await _compute(api, "2.11")
    assert (service["state"], service["forced_down"], service["status"]) == (
        "down", True, "enabled")
    server = await boot(api, "nowhere", wait="ERROR")
    assert f"{HOST} (compute service is down)" in server["fault"]["message"]

    resp = await _put(api, "force-down", {**COMPUTE, "forced_down": "false"}, version="2.11")
    assert resp.json() == {"service": {**COMPUTE, "forced_down": False}}
    assert (await _compute(api, "2.11"))["state"] == "up"
    assert (await boot(api, "back"))["status"] == "ACTIVE"


@pytest.mark.parametrize(("version", "path", "body", "code", "fragment"), [
    ("2.1", "bogus", COMPUTE, 404, "Unknown action bogus"),
    ("2.52", "6a0bd0a5-0000-4000-8000-000000000000", COMPUTE, 404, "Unknown action"),
    ("2.1", "enable", {"host": HOST}, 400, "'binary' is a required property"),
    ("2.1", "enable", {**COMPUTE, "forced_down": True}, 400, "'forced_down' was unexpected"),
    ("2.1", "enable", {**COMPUTE, "host": "bad host!"}, 400, "field/attribute host"),
    ("2.1", "enable", {**COMPUTE, "binary": ""}, 400, "field/attribute binary"),
    ("2.1", "disable-log-reason", COMPUTE, 400, "Missing disabled reason field"),
    ("2.1", "disable-log-reason", {**COMPUTE, "disabled_reason": "x" * 256}, 400,
     "field/attribute disabled_reason"),
    ("2.11", "force-down", COMPUTE, 400, "Missing forced_down field"),
    ("2.11", "force-down", {**COMPUTE, "forced_down": "perhaps"}, 400,
     "field/attribute forced_down"),
    ("2.1", "enable", {"host": "nohost", "binary": "nova-compute"}, 404,
     "Could not find binary nova-compute on host nohost."),
    ("2.1", "disable", {"host": HOST, "binary": "nova-scheduler"}, 400,
     "Updating a nova-scheduler service is not supported"),
    ("2.53", "enable", COMPUTE, 400, "Invalid uuid enable"),
])
async def test_bad_action_requests(api: Api, version: str, path: str, body: dict[str, Any],
                                   code: int, fragment: str) -> None:
    if version == "2.53":
        body = {"status": "enabled"}
    assert fragment in _error(await _put(api, path, body, version), code)
    assert (await _compute(api))["status"] == "enabled"


async def test_malformed_bodies_are_400(api: Api) -> None:
    for content in (b"", b"{not json", b"[1]"):
        resp = await api.request("PUT", f"{S}/enable", user="admin", content=content,
                                 headers={"Content-Type": "application/json"})
        _error(resp, 400)


# --- PUT /os-services/{uuid} from 2.53 -------------------------------------------


async def test_update_by_uuid_returns_the_whole_service(api: Api) -> None:
    service_id = (await _compute(api))["id"]
    resp = await _put(api, service_id, {"status": "disabled", "disabled_reason": "disk swap"},
                      version="2.53")
    assert resp.status_code == 200, resp.text
    shown = resp.json()["service"]
    assert shown == {"id": service_id, "binary": "nova-compute", "host": HOST,
                     "zone": "nova", "status": "disabled", "state": "up",
                     "updated_at": shown["updated_at"], "disabled_reason": "disk swap",
                     "forced_down": False}
    assert await _compute(api) == shown

    shown = (await _put(api, service_id, {"forced_down": True}, version="2.53")
             ).json()["service"]
    assert (shown["status"], shown["disabled_reason"], shown["forced_down"],
            shown["state"]) == ("disabled", "disk swap", True, "down")

    shown = (await _put(api, service_id, {"status": "enabled", "forced_down": False},
                        version="2.100")).json()["service"]
    assert (shown["status"], shown["disabled_reason"], shown["forced_down"],
            shown["state"]) == ("enabled", None, False, "up")
    assert (await boot(api, "after"))["status"] == "ACTIVE"


async def test_forced_down_by_uuid_is_not_scheduled(api: Api) -> None:
    service_id = (await _compute(api))["id"]
    shown = (await _put(api, service_id, {"forced_down": "yes"}, version="2.53")
             ).json()["service"]
    assert (shown["state"], shown["forced_down"]) == ("down", True)
    server = await boot(api, "nowhere", wait="ERROR")
    assert f"{HOST} (compute service is down)" in server["fault"]["message"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "No updates were requested"),
    ({"disabled_reason": "why"}, "'disabled_reason' requires status 'disabled'"),
    ({"status": "enabled", "disabled_reason": "why"},
     "Specifying 'disabled_reason' with status 'enabled' is invalid."),
    ({"status": "off"}, "field/attribute status"),
    ({"status": "disabled", "disabled_reason": ""}, "field/attribute disabled_reason"),
    ({"forced_down": "maybe"}, "field/attribute forced_down"),
    ({"forced_down": None}, "field/attribute forced_down"),
    ({"status": "disabled", "host": HOST}, "'host' was unexpected"),
])
async def test_bad_updates_by_uuid_are_400(api: Api, body: dict[str, Any],
                                           fragment: str) -> None:
    service_id = (await _compute(api))["id"]
    assert fragment in _error(await _put(api, service_id, body, "2.53"), 400)
    service = await _compute(api)
    assert (service["status"], service["forced_down"]) == ("enabled", False)


async def test_update_by_uuid_finds_only_compute_services(api: Api) -> None:
    conductor = await _add_service(api, "ctl-1", "nova-conductor")
    message = _error(await _put(api, conductor.uuid, {"status": "disabled"}, "2.53"), 400)
    assert message == ("Updating a nova-conductor service is not supported. Only "
                       "nova-compute services can be updated.")
    missing = str(uuid.uuid4())
    assert _error(await _put(api, missing, {"status": "disabled"}, "2.53"), 404) == (
        f"Service {missing} could not be found.")
    assert "Invalid uuid 1" in _error(await _put(api, "1", {"status": "disabled"}, "2.53"),
                                      400)
    # Any form of the uuid that Nova accepts names the service.
    service = await _compute(api)
    resp = await _put(api, service["id"].replace("-", "").upper(), {"status": "disabled"},
                      "2.53")
    assert resp.json()["service"]["id"] == service["id"]


# --- DELETE ----------------------------------------------------------------------


async def test_delete_other_services_by_id_and_by_uuid(api: Api) -> None:
    before = await _list(api)
    conductor = await _add_service(api, "ctl-1", "nova-conductor")
    scheduler = await _add_service(api, "ctl-1", "nova-scheduler")
    resp = await api.request("DELETE", f"{S}/{conductor.id}", user="admin", version="2.52")
    assert resp.status_code == 204, resp.text
    resp = await api.request("DELETE", f"{S}/{scheduler.uuid}", user="admin", version="2.53")
    assert resp.status_code == 204, resp.text
    assert await _list(api, query="?host=ctl-1") == []
    assert len(await _list(api)) == len(before)
    resp = await api.request("DELETE", f"{S}/{scheduler.uuid}", user="admin", version="2.53")
    assert _error(resp, 404) == f"Service {scheduler.uuid} could not be found."


async def test_a_compute_service_with_servers_is_not_deleted(api: Api) -> None:
    service_id = (await _compute(api))["id"]
    resp = await api.request("POST", "/compute/v2.1/os-aggregates", user="admin",
                             json={"aggregate": {"name": "rack-1"}})
    aggregate = resp.json()["aggregate"]["id"]
    resp = await api.request("POST", f"/compute/v2.1/os-aggregates/{aggregate}/action",
                             user="admin", json={"add_host": {"host": HOST}})
    assert resp.status_code == 200, resp.text
    server = await boot(api, "resident")
    resp = await api.request("DELETE", f"{S}/{service_id}", user="admin", version="2.53")
    message = _error(resp, 409)
    assert f"service of host {HOST}: 1 instance(s) are still on it ({server['id']})" in message
    assert len(await placement.summaries(api.cloud.services.db)) == 1

    resp = await api.request("DELETE", f"/compute/v2.1/servers/{server['id']}")
    assert resp.status_code == 204
    for _ in range(200):  # the compute host deletes it shortly
        if (await api.request("GET", f"/compute/v2.1/servers/{server['id']}")
            ).status_code == 404:
            break
        await asyncio.sleep(0.02)
    resp = await api.request("DELETE", f"{S}/{service_id}", user="admin", version="2.53")
    assert resp.status_code == 204, resp.text
    assert await _list(api, query="?binary=nova-compute") == []
    assert await placement.summaries(api.cloud.services.db) == []
    # The host left its aggregate (which can now be deleted) and the hypervisor list.
    resp = await api.request("GET", f"/compute/v2.1/os-aggregates/{aggregate}", user="admin")
    assert resp.json()["aggregate"]["hosts"] == []
    resp = await api.request("DELETE", f"/compute/v2.1/os-aggregates/{aggregate}",
                             user="admin")
    assert resp.status_code == 200, resp.text
    resp = await api.request("GET", "/compute/v2.1/os-hypervisors", user="admin")
    assert resp.json()["hypervisors"] == []
    refused = await boot(api, "homeless", wait="ERROR")
    assert "There are no compute hosts" in refused["fault"]["message"]


@pytest.mark.parametrize(("version", "service_id", "code", "fragment"), [
    ("2.1", "abc", 400, "Invalid service id abc"),
    ("2.1", "1.5", 400, "Invalid service id 1.5"),
    ("2.1", "999", 404, "Service 999 could not be found."),
    ("2.1", "0", 404, "Service 0 could not be found."),
    ("2.1", "-3", 404, "Service -3 could not be found."),
    ("2.1", "99999999999999999999999", 404, "could not be found"),
    ("2.52", "6a0bd0a5-0000-4000-8000-000000000000", 400, "Invalid service id"),
    ("2.53", "1", 400, "Invalid uuid 1"),
    ("2.53", "6a0bd0a5-0000-4000-8000-000000000000", 404,
     "Service 6a0bd0a5-0000-4000-8000-000000000000 could not be found."),
])
async def test_bad_deletes(api: Api, version: str, service_id: str, code: int,
                           fragment: str) -> None:
    before = len(await _list(api))
    resp = await api.request("DELETE", f"{S}/{service_id}", user="admin", version=version)
    assert fragment in _error(resp, code)
    assert len(await _list(api)) == before


# --- policy ----------------------------------------------------------------------


async def test_only_admins(api: Api) -> None:
    service_id = (await _compute(api))["id"]
    calls = [("GET", S, None, "2.1"), ("PUT", f"{S}/disable", COMPUTE, "2.1"),
             ("PUT", f"{S}/{service_id}", {"status": "disabled"}, "2.53"),
             ("DELETE", f"{S}/{service_id}", None, "2.53"), ("DELETE", f"{S}/1", None, "2.1")]
    for method, path, body, version in calls:
        resp = await api.request(method, path, user="demo", version=version, json=body)
        action = {"GET": "list", "PUT": "update", "DELETE": "delete"}[method]
        assert _error(resp, 403) == (f"Policy doesn't allow os_compute_api:os-services:"
                                     f"{action} to be performed.")
    service = await _compute(api)
    assert (service["id"], service["status"]) == (service_id, "enabled")
