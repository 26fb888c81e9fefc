"""A live migration in post-copy (the guest runs at its destination, its memory
follows): the migration shows Nova's `running (post-copy)`, an abort is refused with
400, and a failure then never leads to a rollback at the destination (which would
destroy the only running guest): the server is ERROR there."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from novalet.compute.driver_types import LiveMigrationFailedAfterHandOver, MigrationProgress
from novalet.compute.move_payloads import MoveTarget
from novalet.db import placement
from novalet.virt.fake import FakeDriver
from tests.functional.conftest import Api, boot, wait_for
from tests.functional.test_move_failures import LIVE, on_steps
from tests.functional.test_server_moves import (action, host_of, hosts_holding,
                                                migration_becomes)

S = "/compute/v2.1/servers"
MiB = 1 << 20
Progress = Callable[[MigrationProgress], Awaitable[None]]


def in_post_copy(monkeypatch: pytest.MonkeyPatch, ends: asyncio.Event,
                 failure: str | None = None) -> None:
    """Fake sources whose live migration reports post-copy, then waits for `ends`
    and fails after the hand-over (`failure`) or completes as the fake does."""
    real = FakeDriver.live_migration

    async def live_migration(self: FakeDriver, uuid: str, dest_host: str,
                             block_migration: bool, progress: Progress,
                             target: MoveTarget) -> None:
        await progress(MigrationProgress(512 * MiB, 500 * MiB, 12 * MiB, post_copy=True))
        await ends.wait()
        if failure is not None:
            raise LiveMigrationFailedAfterHandOver(uuid=uuid, dest=dest_host, reason=failure)
        await real(self, uuid, dest_host, block_migration, progress, target)

    monkeypatch.setattr(FakeDriver, "live_migration", live_migration)


async def migration_in(api: Api, sid: str, status: str, reported: bool = False
                       ) -> dict[str, Any]:
    """The server's newest migration once in `status` (and with progress)."""
    for _ in range(300):
        resp = await api.request("GET", f"{S}/{sid}/migrations", user="admin",
                                 version="2.80")
        found = resp.json()["migrations"]
        if found and found[0]["status"] == status and (
                found[0]["memory_processed_bytes"] or not reported):
            return dict(found[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no live migration of {sid} in {status}: {found}")


async def test_b2_post_copy_shows_novas_status_and_refuses_abort_with_400(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api = multi_host_api
    ends = asyncio.Event()
    in_post_copy(monkeypatch, ends)
    sid = (await boot(api))["id"]
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    running = await migration_in(api, sid, "running (post-copy)", reported=True)
    assert running["memory_processed_bytes"] == 500 * MiB  # progress still kept
    resp = await api.request("DELETE", f"{S}/{sid}/migrations/{running['id']}",
                             user="admin", version="2.24")
    assert resp.status_code == 400, resp.text
    assert "running (post-copy)" in resp.json()["badRequest"]["message"]
    resp = await api.request("POST", f"{S}/{sid}/migrations/{running['id']}/action",
                             user="admin", version="2.22", json={"force_complete": None})
    assert resp.status_code == 400, resp.text
    ends.set()
    moved = await wait_for(api, sid, "ACTIVE", user="admin", timeout=5)
    assert moved["OS-EXT-SRV-ATTR:host"] == running["dest_compute"]
    await migration_becomes(api, sid, "completed")


async def test_b2_a_failure_in_post_copy_never_rolls_back_the_destination(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The source's error crosses the bus as its own class: the conductor treats it
    as a failure after the hand-over (server ERROR on the destination, kept there)."""
    api = multi_host_api
    ends = asyncio.Event()
    ends.set()
    in_post_copy(monkeypatch, ends, failure="Connection reset in post-copy")
    sent = on_steps(monkeypatch, _nothing)
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    record = await migration_becomes(api, sid, "error")
    dest = record["dest_compute"]
    server = await wait_for(api, sid, "ERROR", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == dest != source
    assert "Connection reset in post-copy" in server["fault"]["message"]
    steps = [s for s, _ in sent]
    assert "rollback_live_migration_at_destination" not in steps
    assert "post_live_migration_at_destination" not in steps
    assert await hosts_holding(api, sid) == {dest}


async def _nothing(step: str, order: Any) -> None:
    return None


async def test_an_abort_just_before_the_source_starts_sticks(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conductor marks the migration running, then asks the source: an abort in
    between is kept for the job (it used to answer 409 and be lost)."""
    api = multi_host_api
    aborted: list[int] = []

    async def abort_first(step: str, order: Any) -> None:
        if step == "live_migrate_out":
            mid = (await migration_in(api, order.instance.uuid, "running"))["id"]
            resp = await api.request("DELETE", f"{S}/{order.instance.uuid}/migrations/{mid}",
                                     user="admin", version="2.24")
            aborted.append(resp.status_code)

    on_steps(monkeypatch, abort_first)
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    await migration_becomes(api, sid, "cancelled")
    back = await wait_for(api, sid, "ACTIVE", user="admin", timeout=5)
    assert aborted == [202] and back["OS-EXT-SRV-ATTR:host"] == source
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
