"""An evacuee's allocations held aside on its failed host never outlive the server."""

from sqlalchemy import update

from novalet.compute.recreate_requests import EvacuateRequest
from novalet.db import instances, migrations_records, placement
from novalet.db.models import Instance
from tests.unit.conductor.conftest import Served

HELD = "inst-1:evacuate-source"  # instances.evacuate_source_consumer


async def _held_on_h1(served: Served) -> None:
    """inst-1's claim on h1, held aside as an evacuation does."""
    await placement.upsert_provider(served.db, "rp-h1", "h1", "h1", "nova",
                                    {"VCPU": (8, 0, 1.0), "MEMORY_MB": (1024, 0, 1.0)})
    (rp,) = [p for p in await placement.summaries(served.db) if p.uuid == "rp-h1"]
    assert await placement.claim(served.db, "inst-1", "rp-h1", {"VCPU": 1, "MEMORY_MB": 64},
                                 rp.generation)
    await placement.move_allocations(served.db, "inst-1", HELD)


async def _request(served: Served) -> EvacuateRequest:
    record = await migrations_records.create(served.db, {
        "instance_uuid": "inst-1", "source_compute": "h1", "status": "accepted",
        "migration_type": "evacuation"})
    return EvacuateRequest(instance_uuid="inst-1", migration_uuid=record.uuid)


async def test_destroy_frees_the_held_allocations(served: Served) -> None:
    await _held_on_h1(served)
    await instances.destroy(served.db, "inst-1")
    assert await placement.allocations_of(served.db, HELD) == {}


async def test_a_failed_evacuation_gives_a_live_server_its_allocations_back(
        served: Served) -> None:
    await _held_on_h1(served)
    request = await _request(served)
    await served.conductor.evacuating._undo("inst-1", request, "error")
    assert await placement.allocations_of(served.db, "inst-1") == {"VCPU": 1,
                                                                  "MEMORY_MB": 64}
    assert await placement.allocations_of(served.db, HELD) == {}


async def test_a_failed_evacuation_of_a_deleted_server_drops_them(served: Served) -> None:
    """Deleted while being scheduled (its row gone before the held consumer was made,
    so destroy did not free it): nothing goes back onto the deleted uuid."""
    await _held_on_h1(served)
    async with served.db.transaction() as s:
        await s.execute(update(Instance).where(Instance.uuid == "inst-1").values(
            deleted=True))
    request = await _request(served)
    await served.conductor.evacuating._undo("inst-1", request, "error")
    assert await placement.allocations_of(served.db, "inst-1") == {}
    assert await placement.allocations_of(served.db, HELD) == {}
    (move,) = await migrations_records.list_migrations(
        served.db, migrations_records.MigrationQuery(instance_uuid="inst-1"))
    assert move.status == "error"
