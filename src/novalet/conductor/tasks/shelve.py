"""The shelve and shelve-offload tasks, and the periodic offload of shelved servers.

shelve: the API has set task_state shelving and made the queued image
`<name>-shelved`; the host powers the guest off and uploads its disk; the server
is then SHELVED (still on its host, resources held). With `[DEFAULT]
shelved_offload_time` 0 it is offloaded at once; above 0, `offload_expired`
(every `shelved_poll_interval`) offloads it once that many seconds have passed;
-1 never. Offload: the host destroys the guest, the server becomes
SHELVED_OFFLOADED with no host or node, and its allocations are removed. A
failed step records a fault and puts the server back (task_state cleared); a
failed shelve deletes its image.
"""

from __future__ import annotations

import datetime as dt
import logging

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.timeutils import parse_isotime, utcnow
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.tasks.recreate_common import (Steps, StepFailed, get_or_none, on_host,
                                                     payload, put_back)
from novalet.db import instance_actions, instances, placement
from novalet.db.engine import Database
from novalet.image.api import ImageService
from novalet.network.api import NetworkAPI

LOG = logging.getLogger(__name__)


class ShelveTask:
    def __init__(self, conf: config.Config, db: Database, compute: compute_rpcapi.ComputeAPI,
                 images: ImageService, network: NetworkAPI | None = None) -> None:
        self.conf = conf
        self.db = db
        self.compute = compute
        self.images = images
        self.network = network  # the host left refreshes its networking after an offload

    async def shelve(self, ctx: RequestContext, uuid: str, image_id: str) -> None:
        instance = await get_or_none(self.db, uuid)
        if instance is None or instance.task_state != TaskState.SHELVING or \
                not await put_back(self.db, uuid,
                                   {"task_state": TaskState.SHELVING_IMAGE_UPLOADING},
                                   [TaskState.SHELVING]):
            LOG.info("Instance %s is no longer shelving; not shelving it", uuid)
            current = await get_or_none(self.db, uuid)
            if current is None or current.task_state != TaskState.SHELVING_IMAGE_UPLOADING:
                await self.images.discard_unfinished(image_id)  # else a first run's
            return
        host = instance.host or ""
        try:
            power_state = await Steps(self.db, ctx, uuid).run(
                "compute_shelve_instance", host,
                lambda: on_host(self.db, self.conf, host, "shelve",
                                lambda: self.compute.shelve_instance(
                                    ctx, host, payload(instance), image_id)),
                {"task_state": None}, [TaskState.SHELVING_IMAGE_UPLOADING])
        except StepFailed:
            await self.images.discard_unfinished(image_id)
            return
        shelved = {**instance.system_metadata, "shelved_at": utcnow().isoformat(),
                   "shelved_image_id": image_id, "shelved_host": host}
        if not await put_back(self.db, uuid, {
                "vm_state": VmState.SHELVED, "task_state": None, "power_state": power_state,
                "system_metadata": shelved}, [TaskState.SHELVING_IMAGE_UPLOADING]):
            await self._delete_image(image_id)  # deleted meanwhile: nobody unshelves it
            return
        if self.conf.get("DEFAULT", "shelved_offload_time") == 0 and \
                await self.begin_offload(uuid):
            await self.offload(ctx, uuid)

    async def begin_offload(self, uuid: str) -> bool:
        """SHELVED and idle -> task_state shelving_offloading; False if it is not."""
        try:
            await instances.update(self.db, uuid, {"task_state": TaskState.SHELVING_OFFLOADING},
                                   expected_task_state=[None],
                                   expected_vm_state=[VmState.SHELVED])
        except (exceptions.NotFound, exceptions.Conflict):
            return False
        return True

    async def offload(self, ctx: RequestContext, uuid: str) -> None:
        """Offload a SHELVED server in task_state shelving_offloading."""
        instance = await get_or_none(self.db, uuid)
        if instance is None or instance.vm_state != VmState.SHELVED or \
                instance.task_state != TaskState.SHELVING_OFFLOADING:
            LOG.info("Instance %s is no longer being offloaded", uuid)
            return
        host = instance.host
        expected: list[str | None] = [TaskState.SHELVING_OFFLOADING]
        try:
            await Steps(self.db, ctx, uuid).run(
                "compute_shelve_offload_instance", host,
                lambda: on_host(self.db, self.conf, host or "", "shelveOffload",
                                lambda: self.compute.shelve_offload_instance(
                                    ctx, host or "", payload(instance))),
                {"task_state": None}, expected)
        except StepFailed:
            return
        if await put_back(self.db, uuid, {
                "vm_state": VmState.SHELVED_OFFLOADED, "task_state": None,
                "power_state": PowerState.SHUTDOWN, "host": None, "node": None}, expected):
            await placement.remove_allocations(self.db, uuid)
            LOG.info("Offloaded shelved instance %s from %s", uuid, host)
            if self.network is not None:  # its firewall rules and floating NAT go now
                await self.network.instance_moved(host, None)

    async def offload_expired(self) -> None:
        """Offload the servers shelved longer than shelved_offload_time (> 0), each as
        its own shelveOffload action."""
        wait = self.conf.get("DEFAULT", "shelved_offload_time")
        if wait <= 0:
            return
        due = utcnow() - dt.timedelta(seconds=wait)
        rows = await instances.list_instances(self.db, instances.ListQuery(
            vm_states=[VmState.SHELVED], task_states=[None]))
        for row in rows:
            shelved_at = row.system_metadata.get("shelved_at")
            if not shelved_at or parse_isotime(shelved_at) > due:
                continue
            if not await self.begin_offload(row.uuid):
                continue
            ctx = RequestContext.admin()
            await instance_actions.start(self.db, ctx, [row.uuid], "shelveOffload")
            await self.offload(ctx, row.uuid)

    async def _delete_image(self, image_id: str) -> None:
        try:
            await self.images.delete(RequestContext.admin(), image_id)
        except exceptions.NovaletError as exc:
            LOG.warning("Could not delete shelved image %s: %s", image_id, exc)
