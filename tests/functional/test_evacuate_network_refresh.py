"""An evacuation has the failed host's network service refresh too, once the server's
record names its new host: that service may be alive (only the compute died) and
would go on NATing the server's floating IPs to the stale guest and letting that
guest talk on the network, with the evacuee's MAC and address, until its periodic
resync. An offload refreshes the host the server left, for the same reason."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api, boot, wait_for

ACTION = "/compute/v2.1/servers/{}/action"


def record_refreshes(api: Api) -> list[set[str]]:
    """The host sets the conductor's network API asks to refresh, from now on."""
    network = api.cloud.conductor.evacuating.network
    seen: list[set[str]] = []
    real = network.refresh_hosts

    async def recording(hosts: set[str]) -> None:
        seen.append(set(hosts))
        if real is not None:
            await real(hosts)
    network.refresh_hosts = recording
    return seen


async def _force_down(api: Api, host: str) -> None:
    resp = await api.request("PUT", "/compute/v2.1/os-services/force-down", user="admin",
                             version="2.11", json={"host": host, "binary": "nova-compute",
                                                   "forced_down": True})
    assert resp.status_code == 200, resp.text


async def test_the_failed_host_refreshes_once_the_server_is_elsewhere(
        multi_host_api: Api) -> None:
    api = multi_host_api
    server: dict[str, Any] = await boot(api, name="evacuee", user="admin")
    source = server["OS-EXT-SRV-ATTR:host"]
    await _force_down(api, source)
    seen = record_refreshes(api)
    resp = await api.request("POST", ACTION.format(server["id"]), user="admin",
                             version="2.100", json={"evacuate": {}})
    assert resp.status_code == 200, resp.text
    moved = await wait_for(api, server["id"], "SHUTOFF", user="admin")
    dest = moved["OS-EXT-SRV-ATTR:host"]
    assert {source, dest} in seen


async def test_offloading_refreshes_the_host_the_server_left(api: Api) -> None:
    server: dict[str, Any] = await boot(api, name="shelved", user="admin")
    host = server["OS-EXT-SRV-ATTR:host"]
    seen = record_refreshes(api)
    resp = await api.request("POST", ACTION.format(server["id"]), user="admin",
                             version="2.100", json={"shelve": None})
    assert resp.status_code == 202, resp.text
    await wait_for(api, server["id"], "SHELVED_OFFLOADED", user="admin")
    assert {host} in seen
