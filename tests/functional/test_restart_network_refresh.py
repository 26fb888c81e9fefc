"""A compute service that destroys stale guests as it starts (evacuated away while
it was down, or unknown to the cloud) has its host's network service refresh: the
taps no QEMU holds any more go then, not at the next periodic resync (or never, for
taps that service had plugged itself). A start that destroys nothing asks nothing."""

from __future__ import annotations

from novalet.compute.states import PowerState
from tests.functional.conftest import Api, boot

ORPHAN = "0rphan00-0000-4000-8000-000000000000"


async def _restart_refreshes(api: Api) -> list[set[str]]:
    compute = api.cloud.compute
    refreshed: list[set[str]] = []
    real = compute.network.refresh

    async def recording(hosts: set[str]) -> None:
        refreshed.append(set(hosts))
        await real(hosts)
    compute.network.refresh = recording  # type: ignore[method-assign]
    await compute.stop()
    await compute.start()
    return refreshed


async def test_a_start_that_destroys_a_stale_guest_refreshes_its_hosts_network(
        api: Api) -> None:
    await boot(api, "kept")
    api.cloud.compute.driver.guests[ORPHAN] = PowerState.RUNNING  # type: ignore[attr-defined]
    assert await _restart_refreshes(api) == [{api.cloud.compute.host}]
    assert ORPHAN not in api.cloud.compute.driver.guests  # type: ignore[attr-defined]


async def test_a_start_that_destroys_nothing_refreshes_nothing(api: Api) -> None:
    await boot(api, "kept")
    assert await _restart_refreshes(api) == []
