"""The conductor's move methods (RPC 1.4), mixed into ConductorManager: each starts a
task of conductor/tasks/ and answers once the part the caller waits for is done."""

from __future__ import annotations

from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.driver_types import POST_COPY_STATUS
from novalet.compute.move_payloads import LIVE_MIGRATION, MOVE_KINDS, MoveRequest, ProgressReport
from novalet.conductor.tasks.base import TaskDeps, TaskRunner
from novalet.conductor.tasks.confirm_resize import ConfirmResizeTask
from novalet.conductor.tasks.live_migrate import LiveMigrateTask
from novalet.conductor.tasks.migrate import MigrateTask
from novalet.conductor.tasks.revert_resize import RevertResizeTask
from novalet.db import migrations_records
from novalet.db.engine import Database
from novalet.network.api import NetworkAPI
from novalet.scheduler.rpcapi import SchedulerAPI


class MoveFlows:
    db: Database
    conf: config.Config
    scheduler: SchedulerAPI
    compute: compute_rpcapi.ComputeAPI
    network: NetworkAPI
    _move_runner: TaskRunner | None = None

    @property
    def move_tasks(self) -> TaskRunner:
        if self._move_runner is None:
            self._move_runner = TaskRunner()
        return self._move_runner

    def _deps(self) -> TaskDeps:
        return TaskDeps(self.db, self.conf, self.scheduler, self.compute,
                        self.conf.get("DEFAULT", "host"), self.network)

    async def move_server(self, ctx: RequestContext, request: dict[str, Any],
                          wait_for_scheduling: bool = True) -> None:
        """Start a move the API accepted (`request`: a MoveRequest; the instance's
        task_state is set). With `wait_for_scheduling` the answer comes once a
        destination is claimed (NoValidHostForMove, 400, otherwise), else at once."""
        move = MoveRequest.from_dict(request)
        if move.kind not in MOVE_KINDS:
            raise exceptions.Invalid(reason=f"unknown move {move.kind}")
        task: MigrateTask | LiveMigrateTask
        if move.kind == LIVE_MIGRATION:
            task = LiveMigrateTask(self._deps(), ctx, move.instance_uuid, request=move)
        else:
            task = MigrateTask(self._deps(), ctx, move.instance_uuid, request=move)
        name = f"{move.kind} of {move.instance_uuid}"
        if wait_for_scheduling:
            await task.schedule_move()
            self.move_tasks.start(task.run(), name)
        else:
            self.move_tasks.start(self._schedule_then_run(task), name)

    @staticmethod
    async def _schedule_then_run(task: MigrateTask | LiveMigrateTask) -> None:
        try:
            await task.schedule_move()
        except exceptions.NovaletError:
            return  # recorded: migration error, fault, the server as it was
        await task.run()

    async def confirm_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Finish a migration or resize in VERIFY_RESIZE (the API set confirming)."""
        task = ConfirmResizeTask(self._deps(), ctx, instance_uuid)
        self.move_tasks.start(task.run(), f"confirm of {instance_uuid}")

    async def revert_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Undo a migration or resize in VERIFY_RESIZE (the API set reverting)."""
        task = RevertResizeTask(self._deps(), ctx, instance_uuid)
        self.move_tasks.start(task.run(), f"revert of {instance_uuid}")

    async def migration_progress(self, ctx: RequestContext, report: dict[str, Any]) -> None:
        """A live migration's progress from its source host (host_access checks the
        sender is that migration's source and the migration is that instance's)."""
        progress = ProgressReport.from_dict(report)
        record = await migrations_records.get(self.db, progress.migration_uuid)
        if record is None or record.instance_uuid != progress.instance_uuid:
            raise exceptions.NotFound()
        await migrations_records.update(self.db, progress.migration_uuid, {
            "memory_total": progress.memory_total,
            "memory_processed": progress.memory_processed,
            "memory_remaining": progress.memory_remaining,
            "disk_total": progress.disk_total, "disk_processed": progress.disk_processed,
            "disk_remaining": progress.disk_remaining}, ("running", POST_COPY_STATUS))
