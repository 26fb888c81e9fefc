"""The domain rules of moves (migrate, resize's start, live migration, its
force-complete and abort): state checks, the task_state compare-and-swap (two moves
of one server at once: one wins, the other is a 409), then the conductor's task
(conductor/tasks/) does the rest."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.compute import migrations as migration_views
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.host_not_found import TargetHostNotFound
from novalet.compute.move_payloads import LIVE_MIGRATION, MIGRATION, MoveOrder, MoveRequest
from novalet.compute.payloads import InstancePayload
from novalet.compute.put_back import IDLE, put_back
from novalet.compute.states import TaskState, VmState
from novalet.conductor.manager import payload_of
from novalet.db import instance_actions, migrations_records, placement
from novalet.db.models import Instance, Migration

if TYPE_CHECKING:
    from novalet.compute.api import ComputeAPI

LOG = logging.getLogger(__name__)


class CannotMigrateToSameHost(exceptions.Invalid):
    msg_fmt = "Cannot migrate to the host where the server exists."


class UnableToMigrateToSelf(exceptions.Invalid):
    msg_fmt = "Unable to migrate instance (%(uuid)s) to current host (%(host)s)."


class MigrationNotFoundForInstance(exceptions.NotFound):
    msg_fmt = "Migration %(migration_id)s not found for instance %(uuid)s"


class MigrationNotFoundBadRequest(exceptions.Invalid):
    """force_complete answers an unknown migration with 400, as Nova."""

    msg_fmt = "Migration %(migration_id)s not found for instance %(uuid)s"


class InvalidMigrationState(exceptions.Invalid):
    msg_fmt = ("Migration %(migration_id)s state of instance %(uuid)s is %(state)s. "
               "Cannot %(method)s while the migration is in this state.")


def move_memory(instance: Instance, new_flavor: dict[str, Any]) -> dict[str, Any]:
    """What a move keeps in system_metadata to finish or undo it: both flavors and the
    state and zone the server had."""
    return {"system_metadata": {
        **instance.system_metadata, "old_flavor": instance.flavor, "new_flavor": new_flavor,
        "old_vm_state": instance.vm_state,
        "old_availability_zone": instance.availability_zone}}


class MoveAPI:
    def __init__(self, compute: ComputeAPI) -> None:
        self.compute = compute
        self.db = compute.db

    async def start(self, ctx: RequestContext, instance: Instance, request: MoveRequest,
                    wait_for_scheduling: bool = True) -> None:
        """Hand an accepted move to the conductor; if that fails (no bus, a conductor
        too old or not answering), the server's task_state goes back, unless the
        conductor put it back itself (its refusals) or moved on meanwhile."""
        try:
            await self.compute.conductor.move_server(ctx, request, wait_for_scheduling)
        except Exception:
            await self._put_back(instance)
            raise

    async def settle(self, ctx: RequestContext, uuid: str, confirm: bool) -> None:
        """Confirm or revert a move in VERIFY_RESIZE through the conductor; if that
        can't be sent, the server and its migration are back where they were."""
        action, public, status = (("confirm_resize", "confirmResize", "confirming")
                                  if confirm else
                                  ("revert_resize", "revertResize", "reverting"))
        instance = await self.compute._begin(ctx, uuid, action, public)
        await migration_views.set_status(self.db, uuid, status, ("finished",))
        send = self.compute.conductor.confirm_move if confirm else \
            self.compute.conductor.revert_move
        try:
            await send(ctx, uuid)
        except Exception:
            await migration_views.set_status(self.db, uuid, "finished", (status,))
            await self._put_back(instance)
            raise

    async def _put_back(self, instance: Instance) -> None:
        """task_state cleared if it is still the one this request set."""
        await put_back(self.db, instance.uuid, IDLE, [instance.task_state])

    async def _check_host(self, host: str, instance: Instance, live: bool) -> None:
        if host not in {p.host for p in await placement.summaries(self.db,
                                                                   with_zones=False)}:
            raise TargetHostNotFound(host=host)
        if host == instance.host:
            if live:
                raise UnableToMigrateToSelf(uuid=instance.uuid, host=host)
            raise CannotMigrateToSameHost()

    async def migrate(self, ctx: RequestContext, uuid: str, host: str | None) -> None:
        """Cold migration to another host (the scheduler's pick, or `host`)."""
        instance = await self.compute.get(ctx, uuid)
        if host is not None:
            await self._check_host(host, instance, live=False)
        instance = await self.compute._begin(ctx, uuid, "migrate", "migrate",
                                             move_memory(instance, instance.flavor))
        await self.start(ctx, instance, MoveRequest(uuid, MIGRATION, host=host))

    async def live_migrate(self, ctx: RequestContext, uuid: str, host: str | None,
                           block_migration: bool | None, force: bool,
                           asynchronous: bool) -> None:
        """Live migration; `asynchronous` (2.34+): a failure to find a host shows in the
        migration record and the server's fault, not in this request's answer."""
        instance = await self.compute.get(ctx, uuid)
        if host is not None:
            await self._check_host(host, instance, live=True)
        instance = await self.compute._begin(ctx, uuid, "live_migrate", "live-migration")
        await self.start(ctx, instance, MoveRequest(
            uuid, LIVE_MIGRATION, host=host, force=force and host is not None,
            block_migration=block_migration), wait_for_scheduling=not asynchronous)

    async def _live_migration(self, ctx: RequestContext, uuid: str, migration_id: int,
                              action: str, not_found: type[exceptions.NovaletError]
                              ) -> tuple[Instance, Migration]:
        instance = await self.compute.get(ctx, uuid)
        self.compute._check_lock(ctx, instance)
        if instance.task_state != TaskState.MIGRATING:
            from novalet.compute.api import InstanceInvalidState
            raise InstanceInvalidState(action=action, uuid=uuid, attr="task_state",
                                       state=instance.task_state)
        migration = await migrations_records.get_of_instance(self.db, uuid, migration_id)
        if migration is None or migration.migration_type != LIVE_MIGRATION:
            raise not_found(migration_id=migration_id, uuid=uuid)
        return instance, migration

    async def force_complete(self, ctx: RequestContext, uuid: str, migration_id: int) -> None:
        """Have the source finish a running live migration now."""
        instance, migration = await self._live_migration(
            ctx, uuid, migration_id, "force_complete", MigrationNotFoundBadRequest)
        if migration.status != "running":
            raise InvalidMigrationState(migration_id=migration_id, uuid=uuid,
                                        state=migration.status, method="force complete")
        await instance_actions.start(self.db, ctx, [uuid], "live_migration_force_complete")
        await self.compute.compute.live_migration_force_complete(
            ctx, migration.source_compute or "", uuid)

    async def abort(self, ctx: RequestContext, uuid: str, migration_id: int,
                    before_running: bool) -> None:
        """Stop a live migration: a running one at its source; with `before_running`
        (2.65) also one still preparing, which the conductor's task then rolls back."""
        instance, migration = await self._live_migration(
            ctx, uuid, migration_id, "abort live migration", MigrationNotFoundForInstance)
        allowed = ("running", "queued", "preparing") if before_running else ("running",)
        if migration.status not in allowed:
            raise InvalidMigrationState(migration_id=migration_id, uuid=uuid,
                                        state=migration.status,
                                        method="abort live migration")
        await instance_actions.start(self.db, ctx, [uuid], "live_migration_cancel")
        if migration.status != "running" and await migrations_records.update(
                self.db, migration.uuid, {"status": "cancelled"}, ("queued", "preparing")):
            return
        await self.compute.compute.live_migration_abort(ctx, migration.source_compute or "",
                                                        uuid)

    async def confirm_on_delete(self, ctx: RequestContext, instance: Instance) -> None:
        """Deleting a server in VERIFY_RESIZE confirms its move first, as Nova does:
        the source host drops the guest it kept for a revert (a failure there is
        logged; the delete goes on)."""
        if instance.vm_state != VmState.RESIZED:
            return
        found = await migrations_records.list_migrations(
            self.db, migrations_records.MigrationQuery(instance_uuid=instance.uuid, limit=1))
        if not found or not await migrations_records.update(
                self.db, found[0].uuid, {"status": "confirming"}, ("finished",)):
            return
        migration = found[0]
        source = migration.source_compute or ""
        if source != migration.dest_compute and await self.compute._host_up(source):
            order = MoveOrder(migration_uuid=migration.uuid,
                              instance=InstancePayload.from_dict(payload_of(instance)),
                              source_host=source, dest_host=migration.dest_compute or "",
                              dest_node=migration.dest_node,
                              flavor=FlavorPayload.of(instance.flavor))
            try:
                await self.compute.compute.move_step(ctx, source, "confirm_move_out", order)
            except exceptions.NovaletError as exc:
                LOG.warning("Source %s of deleted %s did not clean up: %s", source,
                            instance.uuid, exc)
        await migrations_records.update(self.db, migration.uuid, {"status": "confirmed"})
