"""os-hosts (admin, up to 2.42): list, resources, enable/disable; maintenance mode and
power actions are refused with 501 as Nova refuses them for drivers without them."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api, boot
from tests.functional.test_driver_capabilities import api501

__all__ = ["api501"]  # the fixture: an Api on which 501 is an answer, not a bug

H = "/compute/v2.1/os-hosts"


async def _admin(api: Api, method: str, path: str, version: str = "2.42",
                 **kwargs: Any) -> Any:
    return await api.request(method, path, user="admin", version=version, **kwargs)


async def test_list_hosts_by_zone(api: Api) -> None:
    resp = await _admin(api, "GET", H)
    assert resp.status_code == 200, resp.text
    hosts = resp.json()["hosts"]
    assert {"host_name": "fake-host-1", "service": "compute", "zone": "nova"} in hosts
    assert {h["service"] for h in hosts} >= {"compute", "conductor", "scheduler"}
    assert all(h["zone"] == "internal" for h in hosts if h["service"] != "compute")
    assert all(set(h) == {"host_name", "service", "zone"} for h in hosts)
    zoned = (await _admin(api, "GET", H + "?zone=nova")).json()["hosts"]
    assert zoned == [h for h in hosts if h["zone"] == "nova"]
    assert (await _admin(api, "GET", H + "?zone=")).json()["hosts"] == hosts
    assert (await _admin(api, "GET", H + "?zone=xxx")).json()["hosts"] == []


async def test_show_host_resources(api: Api) -> None:
    server = await boot(api)
    flavor = (await api.request("GET", "/compute/v2.1/flavors/1")).json()["flavor"]
    resp = await _admin(api, "GET", H + "/fake-host-1")
    assert resp.status_code == 200, resp.text
    lines = [line["resource"] for line in resp.json()["host"]]
    assert [r["project"] for r in lines] == ["(total)", "(used_now)", "(used_max)",
                                           server["tenant_id"]]
    assert all(r["host"] == "fake-host-1" for r in lines)
    total, used_now, used_max, project = lines
    assert total["cpu"] >= used_now["cpu"] >= 1 and total["memory_mb"] > 0
    expected = {"cpu": flavor["vcpus"], "memory_mb": flavor["ram"],
                "disk_gb": flavor["disk"] + flavor["OS-FLV-EXT-DATA:ephemeral"]}
    assert {k: used_max[k] for k in expected} == expected
    assert {k: project[k] for k in expected} == expected


async def test_show_unknown_host_is_404(api: Api) -> None:
    resp = await _admin(api, "GET", H + "/nonexistent_hostname")
    assert resp.status_code == 404 and "nonexistent_hostname" in resp.text


async def test_disable_and_enable_a_host(api: Api) -> None:
    resp = await _admin(api, "PUT", H + "/fake-host-1", json={"status": "Disable"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"host": "fake-host-1", "status": "disabled"}
    services = (await _admin(api, "GET", "/compute/v2.1/os-services?binary=nova-compute")
                ).json()["services"]
    assert [s["status"] for s in services] == ["disabled"]
    # as Nova, the list shows enabled services only
    names = [h["host_name"] for h in (await _admin(api, "GET", H)).json()["hosts"]
             if h["service"] == "compute"]
    assert names == []
    resp = await _admin(api, "PUT", H + "/fake-host-1", json={"status": "enable"})
    assert resp.json() == {"host": "fake-host-1", "status": "enabled"}


async def test_maintenance_mode_is_not_supported_and_changes_nothing(api501: Api) -> None:
    api = api501
    resp = await _admin(api, "PUT", H + "/fake-host-1",
                        json={"status": "disable", "maintenance_mode": "enable"})
    assert resp.status_code == 501, resp.text
    assert "not supported" in resp.json()["notImplemented"]["message"]
    services = (await _admin(api, "GET", "/compute/v2.1/os-services?binary=nova-compute")
                ).json()["services"]
    assert [s["status"] for s in services] == ["enabled"]


async def test_update_refusals(api: Api) -> None:
    for body in ({}, {"status": "invalid", "maintenance_mode": "enable"},
                 {"status": "enable", "maintenance_mode": "invalid"},
                 {"status": "enable", "other": 1}, {"status": True}):
        resp = await _admin(api, "PUT", H + "/fake-host-1", json=body)
        assert resp.status_code == 400, (body, resp.text)
    resp = await _admin(api, "PUT", H + "/nonexistent_hostname",
                        json={"status": "enable", "maintenance_mode": "enable"})
    assert resp.status_code == 404, resp.text
    resp = await api.request("PUT", H + "/fake-host-1", json={"status": "disable"})
    assert resp.status_code == 403


async def test_power_actions(api501: Api) -> None:
    api = api501
    for action in ("reboot", "shutdown", "startup"):
        resp = await _admin(api, "GET", f"{H}/fake-host-1/{action}")
        assert resp.status_code == 501, resp.text
        resp = await _admin(api, "GET", f"{H}/nonexistent_hostname/{action}")
        assert resp.status_code == 404, resp.text
        resp = await api.request("GET", f"{H}/fake-host-1/{action}", version="2.42")
        assert resp.status_code == 403, resp.text
        resp = await _admin(api, "GET", f"{H}/fake-host-1/{action}", version="2.43")
        assert resp.status_code == 404, resp.text


async def test_members_are_refused_and_2_43_removes_the_api(api: Api) -> None:
    for path in (H, H + "/fake-host-1"):
        resp = await api.request("GET", path, version="2.42")
        assert resp.status_code == 403, resp.text
        assert (await _admin(api, "GET", path, version="2.42")).status_code == 200
        assert (await _admin(api, "GET", path, version="2.43")).status_code == 404
    resp = await _admin(api, "PUT", H + "/fake-host-1", version="2.43",
                        json={"status": "enable"})
    assert resp.status_code == 404
