"""The fake driver's moves, as the specification of what the conductor's move tasks
expect from a driver: the source keeps a migrated guest until confirm or revert, a
live migration reports each round and stops at force-complete or abort."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from novalet import config
from novalet.compute.states import PowerState
from novalet.virt.driver import GuestSpec, LiveMigrationAborted, MigrationProgress, MoveTarget
from novalet.virt.fake import FakeDriver

SPEC = GuestSpec(uuid="u1", name="vm", hostname="vm", vcpus=1, memory_mb=64, root_gb=1,
                 ephemeral_gb=0, swap_mb=0, image_ref="img")


def fake(steps: int = 4, delay: float = 0.0) -> FakeDriver:
    conf = config.Config()
    conf.set("fake", "live_migration_steps", steps)
    conf.set("fake", "live_migration_step_delay", delay)
    return FakeDriver(conf)


async def test_cold_move_confirmed_and_reverted() -> None:
    source, dest = fake(), fake()
    await source.spawn(SPEC)
    await source.migrate_disk_and_power_off("u1", "dest", MoveTarget())
    assert "u1" not in source.guests and "u1" in source.migrated_out
    bigger = dataclasses.replace(SPEC, memory_mb=128)
    await dest.finish_migration(bigger, power_on=False)
    assert dest.guests["u1"] == PowerState.SHUTDOWN and dest.specs["u1"].memory_mb == 128
    await dest.destroy("u1")  # revert: the destination's copy goes ...
    await source.finish_revert_migration(SPEC, power_on=True)  # ... the source's comes back
    assert source.guests["u1"] == PowerState.RUNNING and not source.migrated_out
    await source.migrate_disk_and_power_off("u1", "dest", MoveTarget())
    await source.confirm_migration("u1")
    assert not source.migrated_out and "u1" not in source.guests


async def test_live_migration_reports_every_round() -> None:
    source, dest = fake(steps=4), fake()
    await source.spawn(SPEC)
    seen: list[MigrationProgress] = []

    async def report(progress: MigrationProgress) -> None:
        seen.append(progress)

    await source.live_migration("u1", "dest", True, report, MoveTarget())
    assert [p.memory_processed for p in seen] == [16 * 2**20, 32 * 2**20, 48 * 2**20,
                                                  64 * 2**20]
    assert seen[-1].memory_remaining == 0 and seen[-1].disk_total == 2**30
    assert "u1" not in source.guests
    await dest.post_live_migration_at_destination(SPEC, paused=True)
    assert dest.guests["u1"] == PowerState.PAUSED


@pytest.mark.parametrize("abort", [False, True])
async def test_force_complete_and_abort(abort: bool) -> None:
    source = fake(steps=1000, delay=0.01)
    await source.spawn(SPEC)
    rounds: list[MigrationProgress] = []

    async def report(progress: MigrationProgress) -> None:
        rounds.append(progress)

    running = asyncio.create_task(source.live_migration("u1", "dest", False, report, MoveTarget()))
    while not rounds:
        await asyncio.sleep(0.01)
    if abort:
        await source.live_migration_abort("u1")
        with pytest.raises(LiveMigrationAborted):
            await asyncio.wait_for(running, 5)
        assert source.guests["u1"] == PowerState.RUNNING  # still here
    else:
        await source.live_migration_force_complete("u1")
        await asyncio.wait_for(running, 5)
        assert "u1" not in source.guests
    assert len(rounds) < 1000 and not source.live_migrations
