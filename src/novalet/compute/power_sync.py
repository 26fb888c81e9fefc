"""Keeps recorded power states true to the hypervisor, and tidies up after a restart.

A guest that powered itself off or whose qemu died shows as SHUTOFF within one
sync interval, with a `stop` instance action. On start, the compute service
re-attaches to running guests without touching them, finishes or fails what
a restart interrupted, and removes guests whose instance is gone.
"""

from __future__ import annotations

import logging

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.compute.payloads import InstancePayload
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.rpcapi import ConductorAPI
from novalet.virt.driver import ComputeDriver, InstanceNotFoundOnHost

LOG = logging.getLogger(__name__)
_OFF = {PowerState.SHUTDOWN, PowerState.CRASHED, PowerState.NOSTATE}
_BUILDING = {TaskState.SCHEDULING, TaskState.SPAWNING, None}


class PowerStateSync:
    def __init__(self, host: str, driver: ComputeDriver, conductor: ConductorAPI) -> None:
        self.host = host
        self.driver = driver
        self.conductor = conductor

    async def _power_of(self, uuid: str) -> PowerState:
        try:
            return (await self.driver.get_info(uuid)).power_state
        except InstanceNotFoundOnHost:
            return PowerState.NOSTATE

    async def sync_once(self) -> None:
        """Compare every idle instance of this host with its guest."""
        ctx = RequestContext.admin()
        for inst in await self.conductor.instances_on_host(ctx, self.host):
            if inst.task_state is not None:
                continue  # an operation is under way; it will set the state
            try:
                await self._sync(inst, await self._power_of(inst.uuid))
            except exceptions.NovaletError as exc:
                LOG.warning("Power sync of %s failed: %s", inst.uuid, exc)

    async def _sync(self, inst: InstancePayload, power: PowerState) -> None:
        if inst.vm_state == VmState.ACTIVE and power in _OFF:
            LOG.info("Instance %s is ACTIVE but its guest is off: recording SHUTOFF",
                     inst.uuid)
            await self.conductor.record_power_change(
                RequestContext(user_id=self.host, roles=["admin"]), inst.uuid, "stop",
                "compute_sync_power_state",
                {"vm_state": VmState.STOPPED, "power_state": int(power)}, [None])
        elif inst.power_state != power:
            await self.conductor.instance_update(RequestContext.admin(), inst.uuid,
                                                 {"power_state": int(power)},
                                                 expected_task_state=[None])

    async def recover(self) -> list[str]:
        """After a (re)start: settle interrupted work and orphaned guests; the uuids of
        the guests removed for being unknown here (their taps go at the host's next
        network refresh, once no QEMU holds them)."""
        ctx = RequestContext.admin()
        recorded = await self.conductor.instances_on_host(ctx, self.host)
        known = {i.uuid for i in recorded}
        kept = self.driver.adopted_at_start() - known
        for uuid in sorted(kept):
            LOG.warning("Keeping guest %s, though no instance record names this host: it "
                        "arrived by live migration (its only copy); an operator settles "
                        "its record (the migration shows where it went)", uuid)
        orphans = sorted(set(await self.driver.list_instances()) - known - kept)
        for uuid in orphans:
            LOG.warning("Removing guest %s: its instance is deleted or unknown", uuid)
            await self.driver.destroy(uuid)
        for inst in recorded:
            await self._recover_one(ctx, inst)
        return orphans

    async def _recover_one(self, ctx: RequestContext, inst: InstancePayload) -> None:
        if inst.task_state == TaskState.DELETING:
            LOG.info("Finishing the delete of %s interrupted by a restart", inst.uuid)
            await self.driver.destroy(inst.uuid)
            await self.conductor.instance_destroy(ctx, inst.uuid)
        elif inst.vm_state == VmState.BUILDING and inst.task_state in _BUILDING:
            LOG.info("Build of %s was interrupted by a restart: ERROR", inst.uuid)
            await self.driver.destroy(inst.uuid)
            await self.conductor.add_fault(ctx, inst.uuid, 500,
                                           "The compute service restarted during the build",
                                           "", self.host)
            await self.conductor.remove_allocations(ctx, inst.uuid)
            await self.conductor.instance_update(ctx, inst.uuid, {
                "vm_state": VmState.ERROR, "task_state": None})
        elif inst.task_state is not None:
            LOG.info("Clearing task_state %s of %s after a restart", inst.task_state,
                     inst.uuid)
            await self.conductor.instance_update(ctx, inst.uuid, {"task_state": None},
                                                 expected_task_state=[inst.task_state])
