"""Revert a migration or resize (VERIFY_RESIZE): the destination removes its guest,
the source brings the old one back with the old flavor and restarts it if it was
running, the destination's resources are freed, the migration reverted."""

from __future__ import annotations

from novalet import exceptions
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.tasks.base import MoveTask, move_consumer
from novalet.conductor.tasks.confirm_resize import newest_migration
from novalet.conductor.tasks.migrate import power_on
from novalet.db import placement


class RevertResizeTask(MoveTask):
    async def run(self) -> None:
        migration = await newest_migration(self, "reverting")
        instance = await self.instance()
        if migration is None:  # nothing to revert (a second delivery): just finish
            await self.set_instance({"task_state": None}, [TaskState.RESIZE_REVERTING])
            return
        source, dest = migration.source_compute or "", migration.dest_compute or ""
        old = instance.system_metadata.get("old_flavor") or instance.flavor
        order = self.order(instance, migration, old, power_on=power_on(instance))
        host = dest
        try:
            if source == dest:
                async with self.steps.event("compute_revert_resize", source):
                    await self.step(source, "revert_in_place", order)
            else:
                async with self.steps.event("compute_revert_resize", dest):
                    await self.step(dest, "revert_move_in", order)
                host = source
                async with self.steps.event("compute_finish_revert_resize", source):
                    await self.step(source, "revert_move_out", order)
        except Exception as exc:
            await self.steps.fault(exc, host)
            await self.set_migration(migration, {"status": "error"})
            await self.set_instance({"vm_state": VmState.ERROR, "task_state": None},
                                    [TaskState.RESIZE_REVERTING])
            return
        await placement.remove_allocations(self.db, move_consumer(self.uuid))
        back = {"host": source, "node": migration.source_node,
                "availability_zone": instance.system_metadata.get(
                    "old_availability_zone", instance.availability_zone),
                "flavor": old,
                "power_state": PowerState.RUNNING if order.power_on else PowerState.SHUTDOWN}
        try:
            await self.set_instance({
                **back, "task_state": None,
                "vm_state": instance.system_metadata.get("old_vm_state") or VmState.ACTIVE},
                [TaskState.RESIZE_REVERTING])
        except (exceptions.Conflict, exceptions.NotFound) as exc:
            if await self.stuck(migration, exc, source, back):  # the record follows the guest
                await self.moved(dest, source)
            return
        await self.set_migration(migration, {"status": "reverted"})
        await self.moved(dest, source)  # (a move under way is on both hosts)
