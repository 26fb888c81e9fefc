"""A compute host back from the dead learns which of its guests were evacuated
(and may mark only its own evacuations cleaned up); no other host may ask."""

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.conductor.rpcapi import ConductorAPI, InstanceNotServed
from novalet.db import instances, migrations_records
from novalet.rpc.bus import NotAuthorizedForHost
from tests.unit.conductor.conftest import Served


def as_host(served: Served, host: str) -> ConductorAPI:
    return ConductorAPI(served.bus.as_user(f"compute-{host}"), config.Config())


async def _evacuation(served: Served, uuid: str, source: str, status: str) -> str:
    record = await migrations_records.create(served.db, {
        "instance_uuid": uuid, "source_compute": source, "dest_compute": "h3",
        "status": status, "migration_type": "evacuation"})
    return record.uuid


async def test_host_learns_its_evacuated_guests_and_marks_them_cleaned(served: Served) -> None:
    ctx = RequestContext.admin()
    # inst-2 was evacuated off h1 to h3 (done); inst-1 had one that failed (still on h1)
    await instances.set_fields(served.db, "inst-2", {"host": "h3"})
    done = await _evacuation(served, "inst-2", "h1", "done")
    await _evacuation(served, "inst-1", "h1", "failed")
    h1 = as_host(served, "h1")
    assert await h1.evacuated_instances(ctx, "h1") == ["inst-2"]
    with pytest.raises(NotAuthorizedForHost):
        await as_host(served, "h2").evacuated_instances(ctx, "h1")
    with pytest.raises(NotAuthorizedForHost):
        await as_host(served, "h2").evacuation_cleaned(ctx, "h1", "inst-2")
    await as_host(served, "h3").evacuation_cleaned(ctx, "h3", "inst-2")  # not its own
    assert await h1.evacuated_instances(ctx, "h1") == ["inst-2"]
    await h1.evacuation_cleaned(ctx, "h1", "inst-2")
    assert await h1.evacuated_instances(ctx, "h1") == []
    moves = await migrations_records.list_migrations(
        served.db, migrations_records.MigrationQuery(instance_uuid="inst-2"))
    assert [(m.uuid, m.status) for m in moves] == [(done, "completed")]


async def test_a_deleted_evacuee_is_stale_too(served: Served) -> None:
    await _evacuation(served, "inst-1", "h1", "done")
    await instances.destroy(served.db, "inst-1")
    assert await as_host(served, "h1").evacuated_instances(RequestContext.admin(), "h1") == [
        "inst-1"]


async def test_the_failed_host_cannot_write_its_evacuated_instance(served: Served) -> None:
    """Once the evacuation is done the instance is the destination's alone."""
    ctx = RequestContext.admin()
    await instances.set_fields(served.db, "inst-1", {"host": "h3"})
    record = await _evacuation(served, "inst-1", "h1", "pre-migrating")
    with pytest.raises(InstanceNotServed):  # under way: the destination's already
        await as_host(served, "h1").event_start(ctx, "inst-1", "e", "h1")
    await as_host(served, "h3").event_start(ctx, "inst-1", "e", "h3")
    await migrations_records.update(served.db, record, {"status": "done"})
    with pytest.raises(InstanceNotServed):
        await as_host(served, "h1").instance_update(ctx, "inst-1", {"task_state": None})
    await as_host(served, "h3").instance_update(ctx, "inst-1", {"task_state": None})


async def test_a_host_back_mid_evacuation_learns_its_guest_is_stale(served: Served) -> None:
    """Placed on its destination already (pre-migrating): the returning source must
    destroy its copy, but the evacuation is not completed by that."""
    ctx = RequestContext.admin()
    await instances.set_fields(served.db, "inst-2", {"host": "h3"})
    moving = await _evacuation(served, "inst-2", "h1", "pre-migrating")
    await _evacuation(served, "inst-1", "h1", "accepted")  # still on h1: not stale yet
    h1 = as_host(served, "h1")
    assert await h1.evacuated_instances(ctx, "h1") == ["inst-2"]
    await h1.evacuation_cleaned(ctx, "h1", "inst-2")
    (move,) = await migrations_records.list_migrations(
        served.db, migrations_records.MigrationQuery(instance_uuid="inst-2"))
    assert (move.uuid, move.status) == (moving, "pre-migrating")


async def test_the_failed_host_cannot_write_an_instance_being_evacuated(
        served: Served) -> None:
    """Accepted: the instance still names h1, but h1 is no longer its host."""
    ctx = RequestContext.admin()
    record = await _evacuation(served, "inst-1", "h1", "accepted")
    with pytest.raises(InstanceNotServed):
        await as_host(served, "h1").instance_update(ctx, "inst-1", {"power_state": 4})
    with pytest.raises(InstanceNotServed):
        await as_host(served, "h1").record_power_change(
            ctx, "inst-1", "stop", "compute_stop_instance", {"power_state": 4}, None)
    await migrations_records.update(served.db, record, {"status": "failed"})
    await as_host(served, "h1").instance_update(ctx, "inst-1", {"power_state": 4})
