"""os-hypervisors: list, detail, show, uptime, statistics, search, servers across
microversions 2.1, 2.28, 2.33, 2.53 and 2.88; figures from placement."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

import httpx

from novalet.service.allinone import AllInOne
from novalet.virt.fake import FAKE_UPTIME
from tests.functional.conftest import Api, boot, make_conf

H = "/compute/v2.1/os-hypervisors"


async def _get(api: Api, path: str, version: str = "2.1", user: str = "admin"):  # type: ignore[no-untyped-def]
    return await api.request("GET", H + path, user=user, version=version)


async def test_list_and_detail_below_253_use_integer_ids(api: Api) -> None:
    resp = await _get(api, "")
    assert resp.status_code == 200, resp.text
    (hv,) = resp.json()["hypervisors"]
    assert hv == {"id": hv["id"], "hypervisor_hostname": "fake-host-1", "state": "up",
                  "status": "enabled"}
    assert isinstance(hv["id"], int)
    detail = (await _get(api, "/detail")).json()["hypervisors"][0]
    assert detail["hypervisor_type"] == "fake"
    assert detail["vcpus"] == 64 and detail["memory_mb"] == 262144
    assert detail["local_gb"] == 10240 and detail["running_vms"] == 0
    assert detail["free_ram_mb"] == 262144 and detail["vcpus_used"] == 0
    assert isinstance(detail["cpu_info"], str)  # a JSON string below 2.28
    assert isinstance(detail["service"]["id"], int)
    assert (await _get(api, "/detail", "2.28")).json()["hypervisors"][0]["cpu_info"] == {
        "arch": "x86_64", "model": "fake"}


async def test_figures_follow_a_booted_server(api: Api) -> None:
    server = await boot(api)  # flavor 1: m1.tiny
    flavor = (await api.request("GET", "/compute/v2.1/flavors/1")).json()["flavor"]
    hv = (await _get(api, "/detail")).json()["hypervisors"][0]
    assert hv["running_vms"] == 1
    assert hv["vcpus_used"] == flavor["vcpus"]
    assert hv["memory_mb_used"] == flavor["ram"]
    assert hv["free_ram_mb"] == 262144 - flavor["ram"]
    assert hv["local_gb_used"] == flavor["disk"]
    stats = (await _get(api, "/statistics")).json()["hypervisor_statistics"]
    assert stats["count"] == 1 and stats["running_vms"] == 1
    assert stats["memory_mb_used"] == flavor["ram"]
    servers = (await _get(api, "/fake/servers")).json()["hypervisors"][0]["servers"]
    assert [s["uuid"] for s in servers] == [server["id"]]
    assert servers[0]["name"].startswith("instance-")
    # 2.53: with_servers on list and show
    listed = (await api.request("GET", H + "?with_servers=true", user="admin",
                                version="2.53")).json()["hypervisors"][0]
    assert [s["uuid"] for s in listed["servers"]] == [server["id"]]
    shown = (await api.request("GET", f"{H}/{listed['id']}?with_servers=1", user="admin",
                               version="2.53")).json()["hypervisor"]
    assert [s["uuid"] for s in shown["servers"]] == [server["id"]]


async def test_show_and_uptime(api: Api) -> None:
    hv_id = (await _get(api, "")).json()["hypervisors"][0]["id"]
    shown = (await _get(api, f"/{hv_id}")).json()["hypervisor"]
    assert shown["hypervisor_hostname"] == "fake-host-1" and "uptime" not in shown
    resp = await _get(api, f"/{hv_id}/uptime")
    assert resp.status_code == 200, resp.text
    assert resp.json()["hypervisor"]["uptime"] == FAKE_UPTIME
    assert (await _get(api, "/999999")).status_code == 404
    assert (await _get(api, "/abc")).status_code == 404
    assert (await _get(api, "/999999/uptime")).status_code == 404


async def test_253_uses_uuids(api: Api) -> None:
    hv = (await _get(api, "", "2.53")).json()["hypervisors"][0]
    assert str(uuidlib.UUID(hv["id"])) == hv["id"]
    detail = (await _get(api, f"/{hv['id']}", "2.53")).json()["hypervisor"]
    assert str(uuidlib.UUID(detail["service"]["id"])) == detail["service"]["id"]
    assert (await _get(api, "/1", "2.53")).status_code == 400
    assert (await _get(api, f"/{uuidlib.uuid4()}", "2.53")).status_code == 404
    assert (await _get(api, "/fake/search", "2.53")).status_code == 404
    assert (await _get(api, "/fake/servers", "2.53")).status_code == 404
    found = await _get(api, "?hypervisor_hostname_pattern=host-1", "2.53")
    assert [h["hypervisor_hostname"] for h in found.json()["hypervisors"]] == ["fake-host-1"]
    assert (await _get(api, "?hypervisor_hostname_pattern=nope", "2.53")).status_code == 404
    paged = await _get(api, "?hypervisor_hostname_pattern=fake&limit=1", "2.53")
    assert paged.status_code == 400
    assert (await _get(api, "?unknown=1", "2.53")).status_code == 400
    assert (await _get(api, "?with_servers=maybe", "2.53")).status_code == 400


async def test_search(api: Api) -> None:
    found = (await _get(api, "/host-1/search")).json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == ["fake-host-1"]
    resp = await _get(api, "/nothing-like-it/search")
    assert resp.status_code == 404
    assert "No hypervisor matching 'nothing-like-it'" in resp.text
    # LIKE wildcards are literal
    assert (await _get(api, "/%25/search")).status_code == 404


async def test_paging_from_233(api: Api) -> None:
    resp = await _get(api, "?limit=1", "2.33")
    body = resp.json()
    assert len(body["hypervisors"]) == 1
    assert "marker=" in body["hypervisors_links"][0]["href"]
    marker = body["hypervisors"][0]["id"]
    after = (await _get(api, f"?limit=1&marker={marker}", "2.33")).json()
    assert after["hypervisors"] == [] and "hypervisors_links" not in after
    assert (await _get(api, "?marker=424242", "2.33")).status_code == 400
    assert (await _get(api, "?limit=-1", "2.33")).status_code == 400
    assert (await _get(api, f"?marker={uuidlib.uuid4()}", "2.53")).status_code == 400
    # below 2.33 paging parameters are ignored
    assert len((await _get(api, "?limit=0")).json()["hypervisors"]) == 1


async def test_288_drops_figures_and_adds_uptime(api: Api) -> None:
    hv = (await _get(api, "/detail", "2.88")).json()["hypervisors"][0]
    assert "vcpus" not in hv and "running_vms" not in hv and "free_ram_mb" not in hv
    assert hv["hypervisor_type"] == "fake"
    shown = (await _get(api, f"/{hv['id']}", "2.88")).json()["hypervisor"]
    assert shown["uptime"] == FAKE_UPTIME and "memory_mb" not in shown
    assert (await _get(api, f"/{hv['id']}/uptime", "2.88")).status_code == 404
    assert (await _get(api, "/statistics", "2.88")).status_code == 404
    assert (await _get(api, f"/{hv['id']}/uptime", "2.87")).status_code == 200
    assert (await _get(api, "/statistics", "2.87")).status_code == 200


async def test_disabled_service_shows_disabled(api: Api) -> None:
    services = (await api.request("GET", "/compute/v2.1/os-services?binary=nova-compute",
                                  user="admin", version="2.53")).json()["services"]
    resp = await api.request("PUT", f"/compute/v2.1/os-services/{services[0]['id']}",
                             user="admin", version="2.53",
                             json={"status": "disabled", "disabled_reason": "maintenance"})
    assert resp.status_code == 200, resp.text
    hv = (await _get(api, "/detail")).json()["hypervisors"][0]
    assert hv["status"] == "disabled"
    assert hv["service"]["disabled_reason"] == "maintenance"


async def test_members_are_refused(api: Api) -> None:
    for path in ("", "/detail", "/statistics", "/fake/search", "/1", "/1/uptime"):
        assert (await _get(api, path, user="demo")).status_code == 403, path


async def test_uptime_of_a_down_host(api: Api) -> None:
    services = (await api.request("GET", "/compute/v2.1/os-services?binary=nova-compute",
                                  user="admin", version="2.53")).json()["services"]
    resp = await api.request("PUT", f"/compute/v2.1/os-services/{services[0]['id']}",
                             user="admin", version="2.53", json={"forced_down": True})
    assert resp.status_code == 200, resp.text
    hv = (await _get(api, "")).json()["hypervisors"][0]
    assert hv["state"] == "down"
    resp = await _get(api, f"/{hv['id']}/uptime")
    assert resp.status_code == 400
    assert "Compute service of fake-host-1 is unavailable" in resp.text
    hv88 = (await _get(api, "", "2.88")).json()["hypervisors"][0]
    shown = (await _get(api, f"/{hv88['id']}", "2.88")).json()["hypervisor"]
    assert shown["uptime"] is None


async def test_several_hosts_page_and_match(state_dir: Path) -> None:
    cloud = AllInOne(make_conf(state_dir, fake__extra_hosts=2), in_process_http=True)
    await cloud.start()
    try:
        transport = httpx.ASGITransport(app=cloud.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test") as c:
            api = Api(cloud, c)
            names = [h["hypervisor_hostname"]
                     for h in (await _get(api, "")).json()["hypervisors"]]
            assert sorted(names) == ["fake-host-1", "fake-host-2", "fake-host-3"]
            seen: list[str] = []
            query = "?limit=2"
            while True:
                body = (await _get(api, query, "2.53")).json()
                seen += [h["hypervisor_hostname"] for h in body["hypervisors"]]
                if "hypervisors_links" not in body:
                    break
                query = "?" + body["hypervisors_links"][0]["href"].split("?", 1)[1]
            assert seen == names
            found = await _get(api, "?hypervisor_hostname_pattern=host-2", "2.53")
            assert [h["hypervisor_hostname"] for h in found.json()["hypervisors"]] == [
                "fake-host-2"]
            stats = (await _get(api, "/statistics")).json()["hypervisor_statistics"]
            assert stats["count"] == 3 and stats["vcpus"] == 3 * 64
    finally:
        await cloud.stop()
