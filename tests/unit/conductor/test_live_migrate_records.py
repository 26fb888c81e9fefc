"""A live migration's records when a part of it fails or is cancelled: the
migration, the server, its fault and its events still tell what happened, and the
failure that goes on is the step's, not a bookkeeping write's."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from novalet.common.context import RequestContext
from novalet.compute import migrations as migration_views
from novalet.compute.move_payloads import LIVE_MIGRATION, MoveOrder, MoveRequest, MoveTarget
from novalet.compute.payloads import Destination
from novalet.compute.states import TaskState
from novalet.conductor.tasks import live_migrate
from novalet.conductor.tasks.live_migrate import EVENT, LiveMigrateTask
from novalet.db import instance_actions, instances, migrations_records
from novalet.db.models import InstanceActionEvent
from tests.unit.conductor.conftest import Served


async def _events(served: Served) -> dict[str, InstanceActionEvent]:
    async with served.db.transaction() as s:
        return {e.event: e for e in (await s.execute(select(InstanceActionEvent))).scalars()}


@pytest.fixture
async def task(served: Served) -> LiveMigrateTask:
    """inst-1 (on h1) as the API leaves it for a live migration: MIGRATING, its action
    started."""
    ctx = RequestContext.admin()
    await instance_actions.start(served.db, ctx, ["inst-1"], "live-migration")
    await instances.set_fields(served.db, "inst-1", {"task_state": TaskState.MIGRATING})
    return LiveMigrateTask(served.conductor._deps(), ctx, "inst-1", request=MoveRequest(
        instance_uuid="inst-1", kind=LIVE_MIGRATION))


async def test_a_failed_lookup_of_unable_hosts_is_recorded_as_the_scheduling_step(
        served: Served, task: LiveMigrateTask, monkeypatch: pytest.MonkeyPatch) -> None:
    async def lookup_fails(*args: Any) -> list[str]:
        raise RuntimeError("compute nodes unreadable")

    monkeypatch.setattr(live_migrate, "hosts_without", lookup_fails)
    with pytest.raises(RuntimeError, match="compute nodes unreadable"):
        await task.schedule_move()
    assert task.migration is not None
    record = await migrations_records.get(served.db, task.migration.uuid)
    assert record is not None and record.status == "error"
    instance = await instances.get(served.db, "inst-1")
    assert instance.task_state is None and instance.host == "h1"
    fault = (await instance_actions.latest_faults(served.db, ["inst-1"]))["inst-1"]
    assert "compute nodes unreadable" in fault.message
    event = (await _events(served))[EVENT]
    assert event.result == "Error" and "compute nodes unreadable" in (event.traceback or "")


async def test_a_record_that_cannot_be_made_leaves_no_lookup_running(
        task: LiveMigrateTask, monkeypatch: pytest.MonkeyPatch) -> None:
    looking = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow_lookup(*args: Any) -> list[str]:
        looking.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return []

    async def record_fails(*args: Any) -> None:
        await looking.wait()
        raise RuntimeError("migrations table gone")

    monkeypatch.setattr(live_migrate, "hosts_without", slow_lookup)
    monkeypatch.setattr(migration_views, "record_move", record_fails)
    with pytest.raises(RuntimeError, match="migrations table gone"):
        await task.schedule_move()
    assert cancelled.is_set()


async def _moving(served: Served, task: LiveMigrateTask) -> None:
    """inst-1's migration recorded and a destination (h2) picked, as schedule_move
    leaves them."""
    instance = await instances.get(served.db, "inst-1")
    task.migration = await migration_views.record_move(served.db, task.ctx, instance,
                                                       instance.flavor, LIVE_MIGRATION)
    await migrations_records.update(served.db, task.migration.uuid, {
        "dest_compute": "h2", "dest_node": "h2", "status": "preparing"})
    task.migration.dest_compute = task.migration.dest_node = "h2"
    task.dest = Destination(instance_uuid="inst-1", host="h2", node="h2")


def _slow_success_closings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Success closings that take a while: a run that did not wait for them returns
    before they are written."""
    finish = instance_actions.event_finish

    async def slow(*args: Any, **kwargs: Any) -> None:
        if args[4] == "Success":
            await asyncio.sleep(0.05)
        await finish(*args, **kwargs)

    monkeypatch.setattr(instance_actions, "event_finish", slow)


async def test_a_cancelled_live_migration_writes_the_closings_of_its_steps_done(
        served: Served, task: LiveMigrateTask, monkeypatch: pytest.MonkeyPatch) -> None:
    await _moving(served, task)
    _slow_success_closings(monkeypatch)
    copying = asyncio.Event()

    async def step(host: str, step: str, order: MoveOrder) -> MoveTarget | None:
        if step == "live_migrate_out":
            copying.set()
            await asyncio.Event().wait()  # until cancelled
        return None

    monkeypatch.setattr(task, "step", step)
    running = asyncio.create_task(task.run())
    await copying.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    events = await _events(served)
    for done in ("compute_check_can_live_migrate_destination", "compute_pre_live_migration"):
        assert events[done].result == "Success" and events[done].finish_time is not None
    assert events["compute_live_migration"].result == "Error"
    assert not task.steps.closing


async def test_an_unexpected_failure_after_the_steps_still_writes_their_closings(
        served: Served, task: LiveMigrateTask, monkeypatch: pytest.MonkeyPatch) -> None:
    await _moving(served, task)
    _slow_success_closings(monkeypatch)

    async def step(host: str, step: str, order: MoveOrder) -> MoveTarget | None:
        return None

    async def set_instance(*args: Any) -> None:
        raise RuntimeError("instances table locked")

    monkeypatch.setattr(task, "step", step)
    monkeypatch.setattr(task, "set_instance", set_instance)
    with pytest.raises(RuntimeError, match="instances table locked"):
        await task.run()
    events = await _events(served)
    assert len(events) == 4
    assert all(e.result == "Success" and e.finish_time is not None for e in events.values())


async def test_a_failed_finish_is_not_replaced_by_a_status_that_could_not_be_written(
        served: Served, task: LiveMigrateTask, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    await _moving(served, task)
    assert task.migration is not None

    async def step(host: str, step: str, order: MoveOrder) -> MoveTarget | None:
        raise RuntimeError("destination could not finish")

    async def set_migration(*args: Any) -> bool:
        raise ConnectionError("database gone")

    monkeypatch.setattr(task, "step", step)
    monkeypatch.setattr(task, "set_migration", set_migration)
    instance = await instances.get(served.db, "inst-1")
    order = task.order(instance, task.migration, instance.flavor, live=True)
    with pytest.raises(RuntimeError, match="destination could not finish"):
        await task._finish_at(task.migration, "h2", order)
    assert "was not recorded post-migrating: database gone" in caplog.text


async def test_a_finish_done_with_its_status_unwritten_fails(
        served: Served, task: LiveMigrateTask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record could not move on: the failure goes on (the guest, handed over,
    stays at the destination and the server goes ERROR there)."""
    await _moving(served, task)
    assert task.migration is not None

    async def step(host: str, step: str, order: MoveOrder) -> MoveTarget | None:
        return None

    async def set_migration(*args: Any) -> bool:
        raise ConnectionError("database gone")

    monkeypatch.setattr(task, "step", step)
    monkeypatch.setattr(task, "set_migration", set_migration)
    instance = await instances.get(served.db, "inst-1")
    order = task.order(instance, task.migration, instance.flavor, live=True)
    with pytest.raises(ConnectionError, match="database gone"):
        await task._finish_at(task.migration, "h2", order)
