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

import asyncio
import logging
import time
from collections.abc import Awaitable
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

LOG = logging.getLogger(__name__)
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
        self.instance_row: Instance | None = None  # as schedule_move read it
        self.marks: list[tuple[str, float]] = [("start", time.monotonic())]

    def mark(self, step: str) -> None:
        """The end of a step of the flow, for the timing line logged at its end."""
        self.marks.append((step, time.monotonic()))

    def log_timing(self) -> None:
        spans = ", ".join(f"{name} {end - begin:.3f}s" for (_, begin), (name, end)
                          in zip(self.marks, self.marks[1:], strict=False))
        LOG.info("Live migration of %s took %.3fs: %s", self.uuid,
                 self.marks[-1][1] - self.marks[0][1], spans)

    async def schedule_move(self) -> None:
        """Record the migration and claim a destination (NoValidHostForMove, or the
        asked host's own refusal); on failure the server is as it was."""
        instance = self.instance_row = await self.instance()
        self.mark("load")
        # The unable hosts are looked up while the record is made, but awaited in
        # _destination: a failure there is the step's (migration error, fault, event).
        unable = asyncio.create_task(hosts_without(self.db, "supports_live_migrate"))
        try:
            migration = self.migration = await migration_views.record_move(
                self.db, self.ctx, instance, instance.flavor, self.request.kind)
        except BaseException:
            unable.cancel()  # nobody would look at it
            await asyncio.gather(unable, return_exceptions=True)
            raise
        self.mark("record")
        dest = self.dest = await self.steps.beside(EVENT, self.deps.host,
                                                   self._destination(instance, unable))
        await asyncio.gather(self.set_migration(migration, {
            "dest_compute": dest.host, "dest_node": dest.node, "dest_host": dest.host,
            "status": "preparing"}), self.steps.settle())
        migration.dest_compute, migration.dest_node = dest.host, dest.node
        self.mark("schedule")

    async def _destination(self, instance: Instance, hosts: Awaitable[list[str]]
                           ) -> Destination:
        """The asked host (forced) or the scheduler's pick, never one of `hosts`
        (those that can't take live migrations), claimed; on failure the claim is
        freed, the migration error and the server as it was."""
        try:
            unable = await hosts
            if self.request.host and self.request.force:
                if self.request.host in unable:
                    raise NoValidHostForMove(reason=f"Host {self.request.host} "
                                             "can't take live migrations.")
                return await self._claim_on(instance, self.request.host)
            return await self.schedule(spec_for(instance, instance.flavor, self.request.host),
                                       [instance.host or "", *unable])
        except Exception as exc:
            await self._undo(exc, None, "error")
            raise

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
        try:
            await self._run()
        finally:  # the closings a failure or a cancel left (none after a success)
            await self.steps.settle()

    async def _run(self) -> None:
        migration, dest = self.migration, self.dest
        assert migration is not None and dest is not None
        # The row schedule_move read: MIGRATING since the API set it, nothing else
        # changes the guest meanwhile (the row is read anew when run alone).
        instance = self.instance_row or await self.instance()
        order = self.order(instance, migration, instance.flavor,
                           paused=instance.vm_state == VmState.PAUSED,
                           block_migration=self.request.block_migration is not False,
                           live=True)
        host, handed_over = dest.host, False
        try:
            await self.steps.beside("compute_check_can_live_migrate_destination", dest.host,
                                    self.step(dest.host, "prep_move", order))
            self.mark("check")
            order.target = await self.steps.beside(
                "compute_pre_live_migration", dest.host,
                self.step(dest.host, "pre_live_migration", order))
            self.mark("prepare")
            if not await self.set_migration(migration, {"status": "running"}, ("preparing",)):
                await self.steps.settle()
                await self._rolled_back(order, None, "cancelled")  # aborted while preparing
                return
            host = order.source_host
            await self.steps.beside("compute_live_migration", host,
                                    self.step(host, "live_migrate_out", order))
            self.mark("copy")
            handed_over, host = True, dest.host
            await self._finish_at(migration, host, order)
            self.mark("finish")
        except Exception as exc:
            await self.steps.settle()
            await self._failed(exc, order, host, handed_over)
            return
        moved = {"host": dest.host, "node": dest.node,
                 "availability_zone": dest.availability_zone}
        try:
            await self.set_instance({**moved, "task_state": None}, [TaskState.MIGRATING])
        except (exceptions.Conflict, exceptions.NotFound) as exc:
            await self.steps.settle()
            await self.handed_over(migration, exc, moved)  # changed or deleted meanwhile
            return
        # `completed` last: whoever sees it finds every record of the move written.
        await asyncio.gather(placement.move_allocations(self.db, move_consumer(self.uuid),
                                                        self.uuid),
                             self.steps.settle())
        await self.set_migration(migration, {"status": "completed"})
        self.mark("records")
        self.log_timing()
        await self.moved(order.source_host, dest.host)  # (a move under way is on both)

    async def _finish_at(self, migration: Migration, host: str, order: MoveOrder) -> None:
        """The destination's finish, with the record's post-migrating written beside it
        (nothing else moves a migration on past running; awaited before `completed`)."""
        status = asyncio.create_task(self.set_migration(migration, {"status": "post-migrating"}))
        try:
            await self.steps.beside("compute_post_live_migration_at_destination", host,
                                    self.step(host, "post_live_migration_at_destination",
                                              order))
        except BaseException:
            # Awaited before the failure's handling writes its own status; its own
            # failure is logged, the step's exception is the one that goes on.
            try:
                await status
            except Exception as lost:  # noqa: BLE001 - the step's failure matters more
                LOG.warning("Migration %s of %s was not recorded post-migrating: %s",
                            migration.uuid, self.uuid, lost)
            raise
        await status

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
