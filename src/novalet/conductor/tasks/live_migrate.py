"""Live migration: the running (or paused) guest goes to another host without
stopping.

Statuses of the migration record, as Nova's: accepted (recorded), preparing (a
destination is claimed and gets the guest's network ready), running (the source
copies memory, reporting progress; force-complete and abort reach it there),
`running (post-copy)` once the guest runs at the destination (no abort then),
completed; cancelled after an abort, error when a step failed (or no host was
found). The instance is MIGRATING throughout and ACTIVE (or PAUSED) after, on its
new host or, when the move did not happen, on its old one (with a fault, unless
aborted). The destination's claim becomes the instance's allocation at the end,
or is freed. Once the source handed the guest over, nothing destroys it at the
destination: a later failure leaves the server ERROR there (Nova's post-migration
failure handling); a step that timed out reverts nothing and keeps both claims.
"""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.compute import migrations as migration_views
from novalet.compute.driver_types import LiveMigrationAborted, LiveMigrationFailedAfterHandOver
from novalet.compute.move_payloads import MoveOrder, MoveRequest
from novalet.compute.payloads import Destination
from novalet.compute.states import TaskState, VmState
from novalet.conductor.tasks.base import (MoveTask, NoValidHostForMove, claim_forced,
                                          hosts_without, move_consumer, spec_for, timed_out)
from novalet.db import migrations_records, placement
from novalet.db.models import Instance, Migration

EVENT = "conductor_live_migrate_instance"
# Statuses an abort may find (2.65: also before the copy started).
ABORTABLE_BEFORE_RUNNING = ("queued", "preparing")


class HostNotServingMoves(exceptions.Invalid):
    msg_fmt = "Compute host %(host)s could not be found."


class LiveMigrateTask(MoveTask):
    def __init__(self, *args: Any, request: MoveRequest) -> None:
        super().__init__(*args)
        self.request = request
        self.migration: Migration | None = None
        self.dest: Destination | None = None

    async def schedule_move(self) -> None:
        """Record the migration and claim a destination (NoValidHostForMove, or the
        asked host's own refusal); on failure the server is as it was."""
        instance = await self.instance()
        self.migration = await migration_views.record_move(
            self.db, self.ctx, instance, instance.flavor, self.request.kind)
        async with self.steps.event(EVENT, self.deps.host):
            try:
                unable = await hosts_without(self.db, "supports_live_migrate")
                if self.request.host and self.request.force:
                    if self.request.host in unable:
                        raise NoValidHostForMove(reason=f"Host {self.request.host} "
                                                 "can't take live migrations.")
                    self.dest = await self._claim_on(instance, self.request.host)
                else:
                    self.dest = await self.schedule(
                        spec_for(instance, instance.flavor, self.request.host),
                        [instance.host or "", *unable])
            except Exception as exc:
                await self._undo(exc, None, "error")
                raise
        await self.set_migration(self.migration, {
            "dest_compute": self.dest.host, "dest_node": self.dest.node,
            "dest_host": self.dest.host, "status": "preparing"})
        self.migration.dest_compute, self.migration.dest_node = self.dest.host, self.dest.node

    async def _claim_on(self, instance: Instance, host: str) -> Destination:
        """`force`: the asked host without the scheduler's filters, but with a claim."""
        if host not in {p.host for p in await placement.summaries(self.db)}:
            raise HostNotServingMoves(host=host)
        dest = await claim_forced(self.db, move_consumer(self.uuid), self.uuid, host,
                                  spec_for(instance, instance.flavor, host).resources)
        if dest is None:
            raise NoValidHostForMove(reason=f"Host {host} has not enough free resources.")
        return dest

    async def run(self) -> None:
        migration, dest = self.migration, self.dest
        assert migration is not None and dest is not None
        instance = await self.instance()
        order = self.order(instance, migration, instance.flavor,
                           paused=instance.vm_state == VmState.PAUSED,
                           block_migration=self.request.block_migration is not False,
                           live=True)
        host, handed_over = dest.host, False
        try:
            async with self.steps.event("compute_check_can_live_migrate_destination", dest.host):
                await self.step(dest.host, "prep_move", order)
            async with self.steps.event("compute_pre_live_migration", dest.host):
                order.target = await self.step(dest.host, "pre_live_migration", order)
            if not await self.set_migration(migration, {"status": "running"}, ("preparing",)):
                await self._rolled_back(order, None, "cancelled")  # aborted while preparing
                return
            host = order.source_host
            async with self.steps.event("compute_live_migration", host):
                await self.step(host, "live_migrate_out", order)
            handed_over, host = True, dest.host
            await self.set_migration(migration, {"status": "post-migrating"})
            async with self.steps.event("compute_post_live_migration_at_destination", host):
                await self.step(host, "post_live_migration_at_destination", order)
        except Exception as exc:
            await self._failed(exc, order, host, handed_over)
            return
        moved = {"host": dest.host, "node": dest.node,
                 "availability_zone": dest.availability_zone}
        try:
            await self.set_instance({**moved, "task_state": None}, [TaskState.MIGRATING])
        except (exceptions.Conflict, exceptions.NotFound) as exc:
            await self.handed_over(migration, exc, moved)  # changed or deleted meanwhile
            return
        await placement.move_allocations(self.db, move_consumer(self.uuid), self.uuid)
        await self.set_migration(migration, {"status": "completed"})
        await self.moved(order.source_host, dest.host)  # (a move under way is on both)

    async def _failed(self, exc: Exception, order: MoveOrder, host: str,
                      handed_over: bool) -> None:
        """Before the source handed the guest over, the destination forgets it; after,
        the guest lives only there: never destroyed, the record follows it (so after a
        failure in post-copy, when the guest ran at the destination already). A step
        that timed out leaves everything as it is (the host may still be at it)."""
        migration, dest = self.migration, self.dest
        assert migration is not None and dest is not None
        if handed_over or isinstance(exc, LiveMigrationFailedAfterHandOver):
            await self.handed_over(migration, exc, {
                "host": dest.host, "node": dest.node,
                "availability_zone": dest.availability_zone})
        elif timed_out(exc):
            await self.stuck(migration, exc, host)
        elif isinstance(exc, LiveMigrationAborted):
            await self._rolled_back(order, None, "cancelled")
        else:
            await self._rolled_back(order, (exc, host), "error")

    async def _rolled_back(self, order: MoveOrder, failure: tuple[Exception, str] | None,
                           status: str) -> None:
        """The destination forgets the guest; the server stays on its source."""
        try:
            await self.step(order.dest_host, "rollback_live_migration_at_destination", order)
        except Exception as again:  # noqa: BLE001 - recorded, the rest goes on
            await self.steps.fault(again, order.dest_host)
        exc, host = failure if failure else (None, None)
        await self._undo(exc, host, status)

    async def _undo(self, exc: Exception | None, host: str | None, status: str) -> None:
        migration = self.migration
        assert migration is not None
        await placement.remove_allocations(self.db, move_consumer(self.uuid))
        await migrations_records.update(self.db, migration.uuid, {"status": status})
        if exc is not None:
            await self.steps.fault(exc, host)
        try:
            await self.set_instance({"task_state": None}, [TaskState.MIGRATING])
        except (exceptions.Conflict, exceptions.NotFound):
            pass  # deleted meanwhile: nothing to put back
