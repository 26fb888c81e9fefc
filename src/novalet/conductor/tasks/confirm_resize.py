"""Confirm a migration or resize (VERIFY_RESIZE): the source host drops the old guest,
the destination's resources become the instance's, the migration is confirmed and
the server ACTIVE again (SHUTOFF if it was off)."""

from __future__ import annotations

from novalet import exceptions
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.tasks.base import MoveTask, move_consumer
from novalet.db import migrations_records, placement
from novalet.db.models import Migration


async def newest_migration(task: MoveTask, status: str) -> Migration | None:
    """The instance's newest migration, if it is in `status`."""
    found = await migrations_records.list_migrations(
        task.db, migrations_records.MigrationQuery(instance_uuid=task.uuid, limit=1))
    return found[0] if found and found[0].status == status else None


class ConfirmResizeTask(MoveTask):
    async def run(self) -> None:
        migration = await newest_migration(self, "confirming")
        instance = await self.instance()
        if migration is None:  # nothing to confirm (a second delivery): just finish
            await self.set_instance({"task_state": None}, [TaskState.RESIZE_CONFIRMING])
            return
        source = migration.source_compute or ""
        order = self.order(instance, migration, instance.flavor)
        step = "confirm_in_place" if source == migration.dest_compute else "confirm_move_out"
        try:
            async with self.steps.event("compute_confirm_resize", source):
                await self.step(source, step, order)
        except Exception as exc:
            await self.steps.fault(exc, source)
            await self.set_migration(migration, {"status": "error"})
            await self.set_instance({"vm_state": VmState.ERROR, "task_state": None},
                                    [TaskState.RESIZE_CONFIRMING])
            return
        await placement.move_allocations(self.db, move_consumer(self.uuid), self.uuid)
        running = instance.power_state == PowerState.RUNNING
        try:
            await self.set_instance({"vm_state": VmState.ACTIVE if running
                                     else VmState.STOPPED, "task_state": None},
                                    [TaskState.RESIZE_CONFIRMING])
        except (exceptions.Conflict, exceptions.NotFound):
            pass  # reset or deleted meanwhile: the confirm is done all the same
        await self.set_migration(migration, {"status": "confirmed"})
        # the source held the guest while the move was under way: it lets go now
        await self.moved(source, migration.dest_compute)
