"""A server moved by migrate, resize revert or live migration has the hosts it left
and joined refresh their networking once its record names the new host: each
host's own refresh after its step ran while the record still named the old one,
so without it the old host went on NATing the server's floating IPs (and the new
one left them out) until the periodic resync."""

from __future__ import annotations

import asyncio

from novalet.db import instances
from tests.functional.conftest import Api, boot, wait_for
from tests.functional.test_server_moves import action, drivers, host_of, migration_becomes


def _record_refreshes(api: Api, uuid: str) -> list[tuple[set[str], str | None]]:
    """Each refresh the conductor asks for: its hosts and the server's recorded host."""
    network = api.cloud.conductor.network
    seen: list[tuple[set[str], str | None]] = []
    real = network.refresh_hosts

    async def recording(hosts: set[str]) -> None:
        seen.append((set(hosts), (await instances.get(api.cloud.services.db, uuid)).host))
        if real is not None:
            await real(hosts)
    network.refresh_hosts = recording
    return seen


async def test_migrate_and_revert_refresh_both_hosts_after_the_record_moved(
        multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    target = next(h for h in drivers(api) if h != source)
    seen = _record_refreshes(api, sid)
    assert (await action(api, sid, {"migrate": {"host": target}},
                         version="2.56")).status_code == 202
    await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    assert ({source, target}, target) in seen
    seen.clear()
    assert (await action(api, sid, {"revertResize": None})).status_code == 202
    await wait_for(api, sid, "ACTIVE", user="admin")
    await migration_becomes(api, sid, "reverted")
    assert ({source, target}, source) in seen


async def test_live_migration_refreshes_both_hosts_after_the_record_moved(
        multi_host_api: Api) -> None:
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    target = next(h for h in drivers(api) if h != source)
    seen = _record_refreshes(api, sid)
    resp = await action(api, sid, {"os-migrateLive": {"host": target,
                                                      "block_migration": "auto"}})
    assert resp.status_code == 202, resp.text
    await migration_becomes(api, sid, "completed")
    assert ({source, target}, target) in seen


async def test_confirm_has_the_source_let_go(multi_host_api: Api) -> None:
    """While confirming, the move is under way and its source's state holds the guest
    (its tap may be made again there); once confirmed, the source refreshes."""
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    target = next(h for h in drivers(api) if h != source)
    assert (await action(api, sid, {"migrate": {"host": target}},
                         version="2.56")).status_code == 202
    await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    seen = _record_refreshes(api, sid)
    assert (await action(api, sid, {"confirmResize": None})).status_code == 204
    await migration_becomes(api, sid, "confirmed")
    for _ in range(100):  # the refresh follows the record's last write
        if ({source, target}, target) in seen:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no refresh of {source} and {target} after the confirm: {seen}")
