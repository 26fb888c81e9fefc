"""os-simple-tenant-usage: sums checked against the flavors and the servers' own
launch and termination times, deleted servers included; paging from 2.40."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from novalet.common.timeutils import parse_isotime
from novalet.compute.usage import hours_for
from tests.functional.conftest import Api, boot

U = "/compute/v2.1/os-simple-tenant-usage"
START = "2000-01-01T00:00:00"
END = "2999-01-01T00:00:00"


def _hours(launched: str, terminated: str | None, end: dt.datetime) -> float:
    return hours_for(parse_isotime(launched),
                     parse_isotime(terminated) if terminated else None,
                     parse_isotime(START), end)


async def _server(api: Api, sid: str) -> dict[str, Any]:
    resp = await api.request("GET", f"/compute/v2.1/servers/{sid}", user="admin",
                             version="2.1")
    return dict(resp.json()["server"])


async def _flavor(api: Api, flavor_id: str) -> dict[str, Any]:
    resp = await api.request("GET", f"/compute/v2.1/flavors/{flavor_id}")
    return dict(resp.json()["flavor"])


async def test_usage_of_running_and_deleted_servers(api: Api) -> None:
    keep = await boot(api, "keep")
    gone = await boot(api, "gone", flavorRef="2")
    launched_gone = (await _server(api, gone["id"]))["OS-SRV-USG:launched_at"]
    resp = await api.request("DELETE", f"/compute/v2.1/servers/{gone['id']}")
    assert resp.status_code == 204
    for _ in range(250):  # the delete completes on the compute host
        resp = await api.request("GET", f"/compute/v2.1/servers/{gone['id']}")
        if resp.status_code == 404:
            break
        await asyncio.sleep(0.02)
    end = "2030-01-01T00:00:00"
    resp = await api.request("GET", f"{U}?start={START}&end={end}&detailed=1", user="admin")
    assert resp.status_code == 200, resp.text
    (usage,) = resp.json()["tenant_usages"]
    servers = {s["instance_id"]: s for s in usage["server_usages"]}
    assert set(servers) == {keep["id"], gone["id"]}
    tiny, small = await _flavor(api, "1"), await _flavor(api, "2")
    s_keep, s_gone = servers[keep["id"]], servers[gone["id"]]
    assert s_gone["state"] == "terminated" and s_gone["ended_at"]
    assert s_keep["state"] == "active" and s_keep["ended_at"] is None
    launched_keep = (await _server(api, keep["id"]))["OS-SRV-USG:launched_at"]
    end_dt = parse_isotime(end)
    assert s_keep["hours"] == pytest.approx(_hours(launched_keep, None, end_dt))
    assert s_gone["hours"] == pytest.approx(
        _hours(launched_gone, s_gone["ended_at"], end_dt))
    assert s_gone["hours"] < 0.01  # it lived for less than a second
    assert (s_keep["vcpus"], s_keep["memory_mb"], s_keep["local_gb"], s_keep["flavor"]) == (
        tiny["vcpus"], tiny["ram"], tiny["disk"], tiny["name"])
    assert (s_gone["memory_mb"], s_gone["flavor"]) == (small["ram"], small["name"])
    total_hours = s_keep["hours"] + s_gone["hours"]
    assert usage["total_hours"] == pytest.approx(total_hours)
    assert usage["total_memory_mb_usage"] == pytest.approx(
        s_keep["hours"] * tiny["ram"] + s_gone["hours"] * small["ram"])
    assert usage["total_vcpus_usage"] == pytest.approx(
        s_keep["hours"] * tiny["vcpus"] + s_gone["hours"] * small["vcpus"])
    assert usage["total_local_gb_usage"] == pytest.approx(
        s_keep["hours"] * tiny["disk"] + s_gone["hours"] * small["disk"])
    assert usage["start"] == "2000-01-01T00:00:00" and usage["stop"] == end
    # not detailed: no server_usages
    brief = (await api.request("GET", f"{U}?start={START}&end={end}", user="admin")
             ).json()["tenant_usages"][0]
    assert "server_usages" not in brief
    assert brief["total_hours"] == pytest.approx(total_hours)


async def test_period_bounds_what_counts(api: Api) -> None:
    await boot(api)
    before = "?start=2000-01-01T00:00:00&end=2001-01-01T00:00:00"
    assert (await api.request("GET", U + before, user="admin")).json() == {
        "tenant_usages": []}
    later = "?start=2999-01-01T00:00:00&end=2999-02-01T00:00:00.5"
    (usage,) = (await api.request("GET", U + later, user="admin")).json()["tenant_usages"]
    assert usage["total_hours"] == pytest.approx(31 * 24, abs=0.001)


async def test_show_own_project_for_members(api: Api) -> None:
    server = await boot(api)
    project = (await _server(api, server["id"]))["tenant_id"]
    resp = await api.request("GET", f"{U}/{project}?start={START}&end={END}")
    assert resp.status_code == 200, resp.text
    usage = resp.json()["tenant_usage"]
    assert usage["tenant_id"] == project
    assert [s["instance_id"] for s in usage["server_usages"]] == [server["id"]]
    admin_project = (await api.request("GET", "/identity/v3/projects?name=admin",
                                       user="admin")).json()["projects"][0]["id"]
    resp = await api.request("GET", f"{U}/{admin_project}?start={START}&end={END}")
    assert resp.status_code == 403
    resp = await api.request("GET", f"{U}/{admin_project}?start={START}&end={END}",
                             user="admin")
    assert resp.json() == {"tenant_usage": {}}
    assert (await api.request("GET", U)).status_code == 403


async def test_bad_periods(api: Api) -> None:
    for query in ("?start=yesterday", "?end=2020-13-01T00:00:00", "?start=2020-01-01",
                  f"?start={END}&end={START}", f"?start={START}&end={START}"):
        resp = await api.request("GET", U + query, user="admin")
        assert resp.status_code == 400, (query, resp.text)
    resp = await api.request("GET", f"{U}?limit=x", user="admin", version="2.40")
    assert resp.status_code == 400
    resp = await api.request("GET", f"{U}?marker=nope", user="admin", version="2.40")
    assert resp.status_code == 400


async def test_paging_from_240(api: Api) -> None:
    first = await boot(api, "one")
    second = await boot(api, "two")
    query = f"?start={START}&end={END}&detailed=1&limit=1"
    body = (await api.request("GET", U + query, user="admin", version="2.40")).json()
    (usage,) = body["tenant_usages"]
    assert [s["instance_id"] for s in usage["server_usages"]] == [first["id"]]
    assert f"marker={first['id']}" in body["tenant_usages_links"][0]["href"]
    body = (await api.request("GET", f"{U}{query}&marker={first['id']}", user="admin",
                              version="2.40")).json()
    assert [s["instance_id"] for s in body["tenant_usages"][0]["server_usages"]] == [
        second["id"]]
    # below 2.40 limit is ignored
    body = (await api.request("GET", U + query, user="admin", version="2.39")).json()
    assert len(body["tenant_usages"][0]["server_usages"]) == 2
    assert "tenant_usages_links" not in body


async def test_empty_tenant_id_is_not_found(api: Api) -> None:
    """Tempest's show with an empty id asks for `.../os-simple-tenant-usage/`: a 404
    (not the list a slash redirect leads to), whoever asks."""
    for user in ("admin", "demo"):
        resp = await api.request("GET", f"{U}/?start={START}&end={END}", user=user)
        assert resp.status_code == 404, resp.text
        assert resp.json()["itemNotFound"]["message"] == "The resource could not be found."
    resp = await api.request("GET", f"{U}?start={START}&end={END}", user="admin")
    assert resp.status_code == 200 and "tenant_usages" in resp.json()


async def test_servers_never_launched_are_left_out(api: Api) -> None:
    """As Nova's query (launched_at < end) leaves them out: every usage has a
    started_at, which Tempest's schema requires."""
    running = await boot(api, "up")
    failed = await boot(api, "never", wait="ERROR", metadata={"fake_spawn_error": "boom"})
    resp = await api.request("GET", f"{U}?start={START}&end={END}&detailed=1", user="admin")
    usages = [s for t in resp.json()["tenant_usages"] for s in t["server_usages"]]
    assert [s["instance_id"] for s in usages] == [running["id"]]
    assert failed["id"] not in resp.text and usages[0]["started_at"]
