"""The unshelve task.

A SHELVED server still has its guest on its host: the host powers it on. A
SHELVED_OFFLOADED one is scheduled anew (its create request's spec, in the zone
and on the host the request names; the scheduler claims its resources), its
NICs move to the chosen host, and that host spawns it from the shelved image.
Either way the server ends ACTIVE and the shelved image is deleted (in place,
the user may have deleted it already: only a spawn needs it). A failure
records a fault and leaves the server as it was (offloaded: no host, no claim).
"""

from __future__ import annotations

import logging
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.payloads import Destination
from novalet.compute.recreate_requests import UnshelveRequest
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.tasks.recreate_common import (SHELVED_KEYS, Steps, StepFailed,
                                                     get_or_none, move_spec, on_host,
                                                     payload, place_on, put_back)
from novalet.db import placement
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.image.api import ImageNotFound, ImageService
from novalet.network.api import NetworkAPI
from novalet.scheduler.rpcapi import SchedulerAPI

LOG = logging.getLogger(__name__)


class UnshelveTask:
    def __init__(self, conf: config.Config, db: Database, scheduler: SchedulerAPI,
                 compute: compute_rpcapi.ComputeAPI, network: NetworkAPI,
                 images: ImageService) -> None:
        self.conf = conf
        self.db = db
        self.scheduler = scheduler
        self.compute = compute
        self.network = network
        self.images = images

    async def unshelve(self, ctx: RequestContext, request: UnshelveRequest) -> None:
        instance = await get_or_none(self.db, request.instance_uuid)
        if instance is None or instance.task_state != TaskState.UNSHELVING:
            LOG.info("Instance %s is no longer unshelving", request.instance_uuid)
            return
        steps = Steps(self.db, ctx, instance.uuid)
        try:
            if instance.vm_state == VmState.SHELVED:
                host = instance.host or ""
                await steps.run("compute_unshelve_instance", host,
                                lambda: on_host(self.db, self.conf, host, "unshelve",
                                                lambda: self._in_place(ctx, host, instance)),
                                {"task_state": None}, [TaskState.UNSHELVING])
                await self._finish(instance, TaskState.UNSHELVING)
            else:
                await self._from_offloaded(ctx, steps, instance, request)
        except StepFailed:
            pass  # recorded, and the server put back

    async def _from_offloaded(self, ctx: RequestContext, steps: Steps, instance: Instance,
                              request: UnshelveRequest) -> None:
        try:
            dest, placed = await steps.run(
                "schedule_instances", self.conf.get("DEFAULT", "host"),
                lambda: self._schedule(ctx, instance, request), {"task_state": None},
                [TaskState.UNSHELVING])
            await steps.run("compute_unshelve_instance", dest.host,
                            lambda: self.compute.unshelve_instance(ctx, dest.host, placed),
                            {"task_state": None, "host": None, "node": None,
                             "availability_zone": instance.availability_zone},
                            [TaskState.SPAWNING])
        except StepFailed:
            await placement.remove_allocations(self.db, instance.uuid)  # the claim, if any
            raise
        await self._finish(instance, TaskState.SPAWNING)

    async def _in_place(self, ctx: RequestContext, host: str, instance: Instance) -> None:
        """The host powers the guest on, which needs no image: the user may have
        deleted the shelved one. Only a host that lost the guest spawns it from the
        shelved image, which then must still exist (else that spawn fails, recorded,
        and the server stays SHELVED)."""
        try:
            shelved = await self._shelved(instance)
        except ImageNotFound:
            shelved = {**payload(instance), "image": None, "image_ref": _shelved_id(instance)}
        await self.compute.unshelve_instance(ctx, host, shelved)

    async def _shelved(self, instance: Instance, placed: Instance | None = None
                       ) -> dict[str, Any]:
        """The payload of `placed` (default: `instance`) to spawn from the shelved image."""
        image = await self.images.get(RequestContext.admin(), _shelved_id(instance))
        return {**payload(placed or instance), "image": image, "image_ref": image["id"]}

    async def _schedule(self, ctx: RequestContext, instance: Instance,
                        request: UnshelveRequest) -> tuple[Destination, dict[str, Any]]:
        """Claim a host, record it (task_state spawning), move the NICs there; the
        host and the payload to spawn from the shelved image."""
        spec = move_spec(instance, request.availability_zone, request.host)
        dest = (await self.scheduler.select_destinations(ctx, spec))[0]
        await self._shelved(instance)  # the image is still there, before anything moves
        placed = await place_on(self.db, self.network, instance, dest, TaskState.SPAWNING,
                                TaskState.UNSHELVING)
        return dest, await self._shelved(instance, placed)

    async def _finish(self, instance: Instance, expected: str) -> None:
        """ACTIVE and running, the shelved keys dropped, the shelved image deleted."""
        current = await get_or_none(self.db, instance.uuid)
        if current is None:
            return
        image_id = current.system_metadata.get("shelved_image_id")
        metadata = {k: v for k, v in current.system_metadata.items() if k not in SHELVED_KEYS}
        if not await put_back(self.db, instance.uuid, {
                "vm_state": VmState.ACTIVE, "task_state": None,
                "power_state": PowerState.RUNNING, "system_metadata": metadata}, [expected]):
            return
        if image_id:
            try:
                await self.images.delete(RequestContext.admin(), str(image_id))
            except ImageNotFound:
                pass  # the user deleted it already
            except exceptions.NovaletError as exc:
                LOG.warning("Could not delete shelved image %s of %s: %s", image_id,
                            instance.uuid, exc)


def _shelved_id(instance: Instance) -> str:
    return str(instance.system_metadata.get("shelved_image_id"))
