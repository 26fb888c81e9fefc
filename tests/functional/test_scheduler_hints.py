"""The different_host and same_host hints across four fake compute hosts."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import MULTI_HOSTS, Api
from tests.functional.test_server_groups_scheduling import boot_into, host_of


async def test_different_host_avoids_the_named_servers(multi_host_api: Api) -> None:
    api = multi_host_api
    first = await boot_into(api, {})
    second = await boot_into(api, {"different_host": first["id"]})
    taken = {await host_of(api, first["id"]), await host_of(api, second["id"])}
    assert len(taken) == 2
    third = await boot_into(api, {"different_host": [first["id"], second["id"]]})
    assert await host_of(api, third["id"]) not in taken


async def test_different_host_with_every_host_taken_fails(multi_host_api: Api) -> None:
    api = multi_host_api
    servers: list[dict[str, Any]] = []
    for _ in MULTI_HOSTS:
        servers.append(await boot_into(api, {"different_host": [s["id"] for s in servers]}
                                       if servers else {}))
    failed = await boot_into(api, {"different_host": [s["id"] for s in servers]},
                             wait="ERROR")
    assert "DifferentHostFilter removed 4 host(s)" in failed["fault"]["message"]


async def test_same_host_follows_the_named_server(multi_host_api: Api) -> None:
    api = multi_host_api
    first = await boot_into(api, {})
    host = await host_of(api, first["id"])
    for _ in range(3):  # the RAM weigher alone would spread these
        follower = await boot_into(api, {"same_host": [first["id"]]})
        assert await host_of(api, follower["id"]) == host
