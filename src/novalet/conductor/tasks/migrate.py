"""Cold migration and resize: schedule a destination, then move the guest there and
leave it in VERIFY_RESIZE until the user confirms or reverts (confirm_resize.py,
revert_resize.py).

Statuses of the migration record, as Nova's: pre-migrating (recorded, scheduling),
migrating (the source stops the guest and sends its disks), post-migrating (the
destination creates it), finished (VERIFY_RESIZE); error when a step fails, and then
the server is put back where and as it was, with a fault. A step that timed out
(the host may still be at it) reverts nothing: migration error, the server ERROR
with a fault, both claims kept for an operator; a server changed meanwhile (e.g. a
resetState) once the guest is on the destination: ERROR there, its claim the
instance's (base.MoveTask.stuck, handed_over). A resize that stays on its
host (allow_resize_to_same_host, or a hypervisor without moves) is the driver's
resize, with the same statuses.
"""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.compute import migrations as migration_views
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.move_payloads import MIGRATION, MoveRequest
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.tasks.base import (MoveTask, hosts_without, move_consumer, spec_for,
                                          timed_out)
from novalet.db import migrations_records, placement
from novalet.db.models import Instance, Migration

EVENT = "conductor_migrate_server"


def power_on(instance: Instance) -> bool:
    """Whether the guest runs after the move: it did before (a SHUTOFF server stays
    off, as in Nova)."""
    return str(instance.system_metadata.get("old_vm_state", instance.vm_state)) != \
        VmState.STOPPED


class MigrateTask(MoveTask):
    """Scheduling runs while the API waits (a 400 when no host fits, as Nova answers);
    the move itself after the API answered (run())."""

    def __init__(self, *args: Any, request: MoveRequest) -> None:
        super().__init__(*args)
        self.request = request
        self.migration: Migration | None = None
        self.zone: str | None = None  # the destination's availability zone

    async def schedule_move(self) -> None:
        instance = await self.instance()
        new = self._new_flavor(instance)
        self.migration = await migration_views.record_move(
            self.db, self.ctx, instance, new, self.request.kind)
        ignore = [] if self._may_stay(instance) else [instance.host or ""]
        ignore += [h for h in await hosts_without(self.db, "supports_migrate")
                   if h != instance.host]  # moves elsewhere need it at both ends
        async with self.steps.event(EVENT, self.deps.host):
            try:
                dest = await self.schedule(spec_for(instance, new, self.request.host), ignore)
            except Exception as exc:
                await self._undo(exc, None)
                raise
        await self.set_migration(self.migration, {
            "dest_compute": dest.host, "dest_node": dest.node, "dest_host": dest.host})
        self.migration.dest_compute, self.migration.dest_node = dest.host, dest.node
        self.zone = dest.availability_zone

    def _new_flavor(self, instance: Instance) -> dict[str, Any]:
        """The flavor document the guest has after the move (a resize's new one)."""
        new = self.request.new_flavor
        return new.to_dict(tagged=False) if new is not None else instance.flavor

    def _may_stay(self, instance: Instance) -> bool:
        if self.request.kind == MIGRATION:
            return False
        return bool(self.deps.conf.get("DEFAULT", "allow_resize_to_same_host")) or \
            self.request.host == instance.host

    async def run(self) -> None:
        migration = self.migration
        assert migration is not None
        instance = await self.instance()
        new = self._new_flavor(instance)
        source, dest = migration.source_compute or "", migration.dest_compute or ""
        order = self.order(instance, migration, new, power_on=power_on(instance))
        step = "resize_instance"
        try:
            await self.set_instance({"task_state": TaskState.RESIZE_MIGRATING},
                                    [TaskState.RESIZE_PREP])
            await self.set_migration(migration, {"status": "migrating"})
            if source == dest:
                async with self.steps.event("compute_resize_instance", source):
                    await self.step(source, "resize_in_place", order)
            else:
                step = "prep_resize"
                async with self.steps.event("compute_prep_resize", dest):
                    order.target = await self.step(dest, "prep_move", order)
                step = "resize_instance"
                async with self.steps.event("compute_resize_instance", source):
                    await self.step(source, "move_out", order)
                step = "finish_resize"
                await self.set_instance({"task_state": TaskState.RESIZE_MIGRATED},
                                        [TaskState.RESIZE_MIGRATING])
                await self.set_migration(migration, {"status": "post-migrating"})
                async with self.steps.event("compute_finish_resize", dest):
                    await self.set_instance({"task_state": TaskState.RESIZE_FINISH},
                                            [TaskState.RESIZE_MIGRATED])
                    await self.step(dest, "move_in", order)
        except Exception as exc:
            if timed_out(exc):
                await self.stuck(migration, exc, source if step == "resize_instance" else dest)
            else:
                await self._roll_back(exc, order, step)
            return
        done = {"host": dest, "node": migration.dest_node, "availability_zone": self.zone,
                "flavor": new,
                "power_state": PowerState.RUNNING if order.power_on else PowerState.SHUTDOWN}
        try:
            await self.set_instance({**done, "vm_state": VmState.RESIZED, "task_state": None},
                                    [TaskState.RESIZE_MIGRATING, TaskState.RESIZE_FINISH])
        except (exceptions.Conflict, exceptions.NotFound) as exc:
            await self.handed_over(migration, exc, done)  # changed or deleted meanwhile
            return
        await self.set_migration(migration, {"status": "finished"})
        await self.moved(source, dest)  # (a move under way is on both hosts)

    async def _roll_back(self, exc: Exception, order: Any, step: str) -> None:
        """The guest back on its source as it was (best effort: a host that fails
        again leaves the fault to say so)."""
        migration = self.migration
        assert migration is not None
        source, dest = migration.source_compute or "", migration.dest_compute or ""
        host = source if step == "resize_instance" else dest
        if source != dest and step != "prep_resize":  # a failed prep cleans up after itself
            order.flavor = FlavorPayload.of((await self.instance()).flavor)
            # The destination first, whatever failed after its prep: its destroy closes
            # the NBD server that waits for the disks and frees its port.
            for where, what in ((dest, "revert_move_in"), (source, "revert_move_out")):
                try:
                    await self.step(where, what, order)
                except Exception as again:  # noqa: BLE001 - recorded, the rest goes on
                    await self.steps.fault(again, where)
        await self._undo(exc, host)

    async def _undo(self, exc: Exception, host: str | None) -> None:
        """Destination resources freed, migration error, the server as it was."""
        migration = self.migration
        assert migration is not None
        await placement.remove_allocations(self.db, move_consumer(self.uuid))
        await migrations_records.update(self.db, migration.uuid, {"status": "error"})
        await self.steps.fault(exc, host)
        try:
            instance = await self.instance()
            old = instance.system_metadata.get("old_vm_state") or instance.vm_state
            await self.set_instance({"vm_state": old, "task_state": None},
                                    [TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING,
                                     TaskState.RESIZE_MIGRATED, TaskState.RESIZE_FINISH])
        except (exceptions.Conflict, exceptions.NotFound):
            pass  # deleted meanwhile: nothing to put back
