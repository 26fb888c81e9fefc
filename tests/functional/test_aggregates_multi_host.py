"""Scheduling across several fake compute hosts in one process."""

from __future__ import annotations

from tests.functional.conftest import MULTI_HOSTS, Api, boot


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
