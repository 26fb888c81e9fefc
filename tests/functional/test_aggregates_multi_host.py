"""Scheduling across several fake compute hosts in one process."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import MULTI_HOSTS, Api, boot, ensure_image


async def test_every_extra_host_is_a_compute_service(multi_host_api: Api) -> None:
    resp = await multi_host_api.request("GET", "/compute/v2.1/os-services?binary=nova-compute",
                                        user="admin")
    assert resp.status_code == 200, resp.text
    hosts = sorted(s["host"] for s in resp.json()["services"])
    assert hosts == MULTI_HOSTS
    assert {s["state"] for s in resp.json()["services"]} == {"up"}


async def test_servers_spread_over_the_hosts(multi_host_api: Api) -> None:
    placed = set()
    for n in range(len(MULTI_HOSTS)):
        server = await boot(multi_host_api, name=f"vm{n}", user="admin")
        placed.add(server["OS-EXT-SRV-ATTR:host"])
    assert placed == set(MULTI_HOSTS)


AGG = "/compute/v2.1/os-aggregates"


async def _aggregate(api: Api, name: str, hosts: list[str], zone: str | None = None,
                     **metadata: str) -> int:
    body: dict[str, Any] = {"name": name}
    if zone:
        body["availability_zone"] = zone
    resp = await api.request("POST", AGG, user="admin", json={"aggregate": body})
    assert resp.status_code == 200, resp.text
    agg_id: int = resp.json()["aggregate"]["id"]
    for host in hosts:
        resp = await api.request("POST", f"{AGG}/{agg_id}/action", user="admin",
                                 json={"add_host": {"host": host}})
        assert resp.status_code == 200, resp.text
    if metadata:
        resp = await api.request("POST", f"{AGG}/{agg_id}/action", user="admin",
                                 json={"set_metadata": {"metadata": metadata}})
        assert resp.status_code == 200, resp.text
    return agg_id


async def _flavor(api: Api, name: str, extra_specs: dict[str, str]) -> str:
    resp = await api.request("POST", "/compute/v2.1/flavors", user="admin", json={
        "flavor": {"name": name, "ram": 256, "vcpus": 1, "disk": 1}})
    assert resp.status_code == 200, resp.text
    flavor_id: str = resp.json()["flavor"]["id"]
    resp = await api.request("POST", f"/compute/v2.1/flavors/{flavor_id}/os-extra_specs",
                             user="admin", json={"extra_specs": extra_specs})
    assert resp.status_code == 200, resp.text
    return flavor_id


async def test_zone_from_aggregate_drives_placement(multi_host_api: Api) -> None:
    api = multi_host_api
    await _aggregate(api, "rack-x", ["fake-host-3"], zone="zone-x")
    for n in range(3):
        server = await boot(api, name=f"x{n}", user="admin", availability_zone="zone-x")
        assert server["OS-EXT-SRV-ATTR:host"] == "fake-host-3"
        assert server["OS-EXT-AZ:availability_zone"] == "zone-x"
    elsewhere = await boot(api, name="default", user="admin", availability_zone="nova")
    assert elsewhere["OS-EXT-SRV-ATTR:host"] != "fake-host-3"
    assert elsewhere["OS-EXT-AZ:availability_zone"] == "nova"


async def test_unknown_zone_is_refused(multi_host_api: Api) -> None:
    image_id = await ensure_image(multi_host_api)
    resp = await multi_host_api.request("POST", "/compute/v2.1/servers", version="2.37", json={"server": {
        "name": "vm", "imageRef": image_id, "flavorRef": "1", "networks": "none",
        "availability_zone": "atlantis"}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "The requested availability zone is not available")


async def test_zone_host_forcing_for_admins(multi_host_api: Api) -> None:
    api = multi_host_api
    await _aggregate(api, "rack-y", ["fake-host-2"], zone="zone-y")
    server = await boot(api, user="admin", availability_zone="zone-y:fake-host-2")
    assert server["OS-EXT-SRV-ATTR:host"] == "fake-host-2"
    server = await boot(api, user="admin", availability_zone="nova:fake-host-4")
    assert server["OS-EXT-SRV-ATTR:host"] == "fake-host-4"


async def test_flavor_extra_specs_match_aggregate_metadata(multi_host_api: Api) -> None:
    api = multi_host_api
    await _aggregate(api, "fast-disks", ["fake-host-2", "fake-host-4"], ssd="true")
    await _aggregate(api, "gpus", ["fake-host-4"], gpus="4")
    ssd = await _flavor(api, "ssd", {"aggregate_instance_extra_specs:ssd": "true"})
    placed = {(await boot(api, name=f"s{n}", user="admin", flavorRef=ssd))["OS-EXT-SRV-ATTR:host"]
              for n in range(4)}
    assert placed == {"fake-host-2", "fake-host-4"}
    gpu = await _flavor(api, "gpu", {"gpus": ">= 2", "hw:cpu_policy": "shared"})
    assert (await boot(api, name="g", user="admin", flavorRef=gpu))["OS-EXT-SRV-ATTR:host"] == "fake-host-4"
    nothing = await _flavor(api, "none", {"aggregate_instance_extra_specs:ssd": "false"})
    failed = await boot(api, name="n", user="admin", flavorRef=nothing, wait="ERROR")
    assert "No valid host" in failed["fault"]["message"]


async def test_availability_zone_detail_lists_aggregate_zones(multi_host_api: Api) -> None:
    api = multi_host_api
    await _aggregate(api, "rack-z", ["fake-host-1", "fake-host-2"], zone="zone-z")
    resp = await api.request("GET", "/compute/v2.1/os-availability-zone/detail", user="admin")
    assert resp.status_code == 200, resp.text
    zones = {z["zoneName"]: z for z in resp.json()["availabilityZoneInfo"]}
    assert set(zones["zone-z"]["hosts"]) == {"fake-host-1", "fake-host-2"}
    assert set(zones["nova"]["hosts"]) == {"fake-host-3", "fake-host-4"}
    assert "nova-compute" in zones["zone-z"]["hosts"]["fake-host-1"]
    assert "internal" in zones
    resp = await api.request("GET", "/compute/v2.1/os-availability-zone")
    names = [z["zoneName"] for z in resp.json()["availabilityZoneInfo"]]
    assert sorted(names) == ["nova", "zone-z"]


async def test_services_show_the_aggregate_zone(multi_host_api: Api) -> None:
    api = multi_host_api
    await _aggregate(api, "rack-s", ["fake-host-4"], zone="zone-s")
    resp = await api.request("GET", "/compute/v2.1/os-services?binary=nova-compute",
                             user="admin")
    zones = {s["host"]: s["zone"] for s in resp.json()["services"]}
    assert zones == {"fake-host-1": "nova", "fake-host-2": "nova", "fake-host-3": "nova",
                     "fake-host-4": "zone-s"}
