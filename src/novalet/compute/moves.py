"""A compute host's part in moves: each step the conductor orders (conductor/tasks/),
done through the virt driver, answered when done or raising when it failed.

The conductor runs the flow and writes every record; a host only moves guests. A
resize that stays on its host uses the driver's resize; a move to another host the
driver's migrate/finish/confirm/revert calls, and live migration its own.
"""

from __future__ import annotations

import logging
from typing import Any

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.compute.driver_types import POST_COPY_STATUS, MigrationProgress
from novalet.compute.move_payloads import MoveOrder, MoveTarget, ProgressReport
from novalet.conductor.rpcapi import ConductorAPI
from novalet.network.model import Vif
from novalet.network.rpcapi import NetworkRPC, VifPlugger
from novalet.virt.driver import ComputeDriver

LOG = logging.getLogger(__name__)


class MoveRefused(exceptions.Conflict):
    msg_fmt = "Host %(host)s can't take this move: %(reason)s."


def _vifs(order: MoveOrder) -> list[Vif]:
    return list(order.instance.network_info)


def _target(order: MoveOrder) -> MoveTarget:
    """Where the destination waits, checked again here (the conductor relays what
    another host said); empty when it prepared nothing."""
    return order.target.check() if order.target else MoveTarget()


class MoveSteps:
    """Mixed into ComputeManager: the move steps it serves (RPC 1.5)."""

    host: str
    driver: ComputeDriver
    conductor: ConductorAPI
    vifs: VifPlugger
    network: NetworkRPC

    # --- a resize on the instance's own host ---------------------------------

    async def resize_in_place(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        step = MoveOrder.from_dict(order)
        await self.vifs.plug(_vifs(step))  # the guest restarts: its taps must be there
        await self.driver.resize(step.uuid, step.guest_spec())
        if not step.power_on:  # a stopped server stays stopped (as Nova)
            await self.driver.power_off(step.uuid)

    async def confirm_in_place(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        await self.driver.confirm_resize(MoveOrder.from_dict(order).uuid)

    async def revert_in_place(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        step = MoveOrder.from_dict(order)
        await self.vifs.plug(_vifs(step))
        await self.driver.revert_resize(step.uuid)
        if not step.power_on:
            await self.driver.power_off(step.uuid)

    # --- a cold move to another host ------------------------------------------

    async def prep_move(self, ctx: RequestContext, order: dict[str, Any]
                        ) -> dict[str, Any] | None:
        """Destination, before anything moves: can this host take the guest? (It
        refuses here, while the guest still runs untouched at the source.) A cold
        move's destination then makes ready to receive the disks: where to send them
        (a MoveTarget)."""
        step = MoveOrder.from_dict(order)
        flag = "supports_live_migrate" if step.live else "supports_migrate"
        if not self.driver.capabilities.supports(flag):
            raise MoveRefused(host=self.host, reason="its hypervisor can't take it")
        if step.uuid in await self.driver.list_instances():
            raise MoveRefused(host=self.host, reason="it has a guest of that uuid already")
        if step.live:
            return None
        return (await self.driver.prepare_move_in(step.guest_spec())).to_dict()

    async def move_out(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        """Source: stop the guest and send its disks to the destination."""
        step = MoveOrder.from_dict(order)
        await self.driver.migrate_disk_and_power_off(step.uuid, step.dest_host,
                                                     _target(step))

    async def move_in(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        """Destination: the guest from the disks received, with the new sizes."""
        step = MoveOrder.from_dict(order)
        await self.vifs.plug(_vifs(step))
        await self.driver.finish_migration(step.guest_spec(), step.power_on)
        await self._refresh_network(step)

    async def confirm_move_out(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        """Source, after confirm: drop the old guest's leftovers."""
        step = MoveOrder.from_dict(order)
        await self.driver.confirm_migration(step.uuid)
        await self.vifs.unplug(_vifs(step))

    async def revert_move_in(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        """Destination, at revert (or after a failed move): remove the guest here."""
        step = MoveOrder.from_dict(order)
        await self.driver.destroy(step.uuid)
        await self.vifs.unplug(_vifs(step))

    async def revert_move_out(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        """Source, at revert (or after a failed move): the guest back as it was."""
        step = MoveOrder.from_dict(order)
        await self.vifs.plug(_vifs(step))
        await self.driver.finish_revert_migration(step.guest_spec(), step.power_on)

    # --- live migration ----------------------------------------------------------

    async def pre_live_migration(self, ctx: RequestContext, order: dict[str, Any]
                                 ) -> dict[str, Any]:
        """Destination: the guest's network devices, then the guest made ready to take
        its memory (and disks); where the source sends them (a MoveTarget)."""
        step = MoveOrder.from_dict(order)
        await self.vifs.plug(_vifs(step))
        target = await self.driver.pre_live_migration(step.guest_spec(),
                                                      step.block_migration, step.paused)
        return target.to_dict()

    async def live_migrate_out(self, ctx: RequestContext, order: dict[str, Any]) -> None:
        """Source: copy the running guest over, reporting progress to the conductor;
        returns once it is gone from here (LiveMigrationAborted when aborted)."""
        step = MoveOrder.from_dict(order)
        post_copy_told = False

        async def report(progress: MigrationProgress) -> None:
            nonlocal post_copy_told
            if progress.post_copy and not post_copy_told:  # Nova's status for it
                await self.conductor.migration_update(ctx, step.uuid, POST_COPY_STATUS,
                                                   ["running"])
                post_copy_told = True
            await self.conductor.migration_progress(
                ctx, ProgressReport.of(step.migration_uuid, step.uuid, progress))

        await self.driver.live_migration(step.uuid, step.dest_host, step.block_migration,
                                         report, _target(step))
        await self.vifs.unplug(_vifs(step))

    async def post_live_migration_at_destination(self, ctx: RequestContext,
                                                 order: dict[str, Any]) -> None:
        step = MoveOrder.from_dict(order)
        await self.driver.post_live_migration_at_destination(step.guest_spec(), step.paused)
        await self._refresh_network(step)

    async def rollback_live_migration_at_destination(self, ctx: RequestContext,
                                                     order: dict[str, Any]) -> None:
        step = MoveOrder.from_dict(order)
        await self.driver.destroy(step.uuid)  # nothing there is fine
        await self.vifs.unplug(_vifs(step))

    async def live_migration_force_complete(self, ctx: RequestContext, uuid: str) -> None:
        await self.driver.live_migration_force_complete(uuid)

    async def live_migration_abort(self, ctx: RequestContext, uuid: str) -> None:
        await self.driver.live_migration_abort(uuid)

    async def _refresh_network(self, step: MoveOrder) -> None:
        if _vifs(step):  # the firewalls of both ends follow the guest
            await self.network.refresh({step.source_host, step.dest_host})
