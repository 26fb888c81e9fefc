"""The compute host's side of the smaller server actions: soft delete and restore,
createBackup with rotation, changePassword and trigger_crash_dump.

A mixin of ComputeManager (compute/manager.py), which provides the driver, the
conductor client, the image client and `_tracked` (driver work inside an
instance-action event; on failure a fault and task_state put back).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.compute.payloads import InstancePayload
from novalet.compute.snapshot_upload import upload_snapshot
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.rpcapi import ConductorAPI
from novalet.virt.driver import ComputeDriver, ImageFetcher

LOG = logging.getLogger(__name__)

Tracked = Callable[[RequestContext, InstancePayload, str, Callable[[], Awaitable[None]],
                    dict[str, Any]], Awaitable[bool]]


class InstancePasswordSetFailed(exceptions.Conflict):
    msg_fmt = "Failed to set admin password on %(uuid)s because %(reason)s"


class HostActions:
    driver: ComputeDriver
    conductor: ConductorAPI
    images: ImageFetcher
    _tracked: Tracked

    async def soft_delete_instance(self, ctx: RequestContext, instance: dict[str, Any]) -> None:
        """Power the guest off at once (Nova's soft delete without a driver hook): it
        waits, off, for restore or the reclaim."""
        inst = InstancePayload.from_dict(instance)
        await self._tracked(ctx, inst, "compute_soft_delete_instance",
                            lambda: self.driver.power_off(inst.uuid, 0),
                            {"vm_state": VmState.SOFT_DELETED,
                             "power_state": PowerState.SHUTDOWN, "task_state": None})

    async def restore_instance(self, ctx: RequestContext, instance: dict[str, Any]) -> None:
        inst = InstancePayload.from_dict(instance)
        await self._tracked(ctx, inst, "compute_restore_instance",
                            lambda: self.driver.power_on(inst.uuid),
                            {"vm_state": VmState.ACTIVE, "power_state": PowerState.RUNNING,
                             "task_state": None})

    async def set_admin_password(self, ctx: RequestContext, instance: dict[str, Any],
                                 password: str) -> None:
        """A call: the API answers with what happened. The guest must be running;
        any failure puts task_state back and is a 409 that never repeats the
        password (the fault keeps the driver's message)."""
        inst = InstancePayload.from_dict(instance)
        if (await self.driver.get_info(inst.uuid)).power_state != PowerState.RUNNING:
            await self.conductor.instance_update(
                ctx, inst.uuid, {"task_state": None},
                expected_task_state=[TaskState.UPDATING_PASSWORD])
            raise InstancePasswordSetFailed(uuid=inst.uuid, reason="it is not running")
        done = await self._tracked(
            ctx, inst, "compute_set_admin_password",
            lambda: self.driver.set_admin_password(inst.uuid, password), {"task_state": None})
        if not done:
            raise InstancePasswordSetFailed(uuid=inst.uuid,
                                            reason="the guest did not take it")

    async def trigger_crash_dump(self, ctx: RequestContext, instance: dict[str, Any]) -> None:
        """An NMI into the guest; states are left as they are (what the guest does
        with it is its own configuration, as in Nova)."""
        inst = InstancePayload.from_dict(instance)
        await self._tracked(ctx, inst, "compute_trigger_crash_dump",
                            lambda: self.driver.trigger_crash_dump(inst.uuid), {})

    async def backup_instance(self, ctx: RequestContext, instance: dict[str, Any],
                              image_id: str, backup_type: str, rotation: int) -> None:
        """createBackup: a snapshot into the queued image, then the instance's oldest
        backups of that type beyond `rotation` are deleted (the new one included when
        rotation is 0, as Nova does). A failed rotation is logged, not a fault."""
        inst = InstancePayload.from_dict(instance)

        if not await self._tracked(
                ctx, inst, "compute_backup_instance",
                lambda: upload_snapshot(self.driver, self.images, inst.uuid, image_id),
                {"task_state": None}):
            return
        try:
            deleted = await self.images.rotate_backups(inst.uuid, backup_type, rotation,
                                                       inst.project_id)
        except Exception as exc:  # the backup itself is done
            LOG.warning("Rotating %s backups of %s failed: %s", backup_type, inst.uuid, exc)
            return
        if deleted:
            LOG.info("Rotated out %s backups of %s: %s", backup_type, inst.uuid,
                     ", ".join(deleted))
