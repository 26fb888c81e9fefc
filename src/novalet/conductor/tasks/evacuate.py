"""The evacuate task: recreate a server of a failed host on another one.

The API has checked that the server's compute service is down, set task_state
rebuilding and made the evacuation's migration record (status accepted). Here the
server's allocations on the failed host are held aside (consumer
`<uuid>:evacuate-source`), a destination is claimed (the scheduler; a forced
host below 2.68 is claimed on without the filters), the NICs move there and that
host spawns the server from its image, powered off after if it is to end
stopped. Success: the held source allocations are dropped, the migration is
done, and when the failed host's compute service starts again it destroys its
stale copy (ComputeManager.destroy_evacuated_instances; the migration then
becomes completed). A host back while the server is already placed elsewhere
(pre-migrating) destroys its copy too, and may not write the instance while
the evacuation is under way (conductor/host_access.py). Failure at any step: a
fault, the server back on the failed host with its allocations there, the
migration failed (error if no host was found).
"""

from __future__ import annotations

import logging
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.payloads import Destination, RequestSpec
from novalet.compute.recreate_requests import EvacuateRequest
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.tasks.recreate_common import (Steps, StepFailed, get_or_none,
                                                     move_spec, on_host, payload, place_on, put_back)
from novalet.db import instances, migrations_records, placement
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.network.api import NetworkAPI
from novalet.scheduler.rpcapi import SchedulerAPI

LOG = logging.getLogger(__name__)


class NoForcedHost(exceptions.NovaletError):
    msg_fmt = "No valid host was found. Host %(host)s has no room for the server."
    code = 500


# The consumer holding an evacuee's allocations on its failed host meanwhile
# (instances.destroy frees it too).
source_consumer = instances.evacuate_source_consumer


class EvacuateTask:
    def __init__(self, conf: config.Config, db: Database, scheduler: SchedulerAPI,
                 compute: compute_rpcapi.ComputeAPI, network: NetworkAPI) -> None:
        self.conf = conf
        self.db = db
        self.scheduler = scheduler
        self.compute = compute
        self.network = network

    async def evacuate(self, ctx: RequestContext, request: EvacuateRequest) -> None:
        uuid = request.instance_uuid
        instance = await get_or_none(self.db, uuid)
        if instance is None or instance.task_state != TaskState.REBUILDING:
            LOG.info("Instance %s is no longer being evacuated", uuid)
            await migrations_records.update(self.db, request.migration_uuid,
                                            {"status": "error"})
            return
        held = source_consumer(uuid)
        await placement.move_allocations(self.db, uuid, held)
        steps = Steps(self.db, ctx, uuid)
        try:
            dest, placed = await steps.run(
                "conductor_rebuild_server", self.conf.get("DEFAULT", "host"),
                lambda: self._schedule(ctx, instance, request), {"task_state": None},
                [TaskState.REBUILDING])
        except StepFailed:
            await self._undo(uuid, request, "error")
            return
        back = {"task_state": None, "host": instance.host, "node": instance.node,
                "availability_zone": instance.availability_zone}
        try:
            await steps.run("compute_rebuild_instance", dest.host,
                            lambda: on_host(self.db, self.conf, dest.host, "evacuate",
                                            lambda: self.compute.rebuild_evacuated(
                                                ctx, dest.host, placed, request.stopped)),
                            back, [TaskState.REBUILD_SPAWNING])
        except StepFailed:
            await self._undo(uuid, request, "failed", instance)
            return
        done = await put_back(self.db, uuid, {
            "vm_state": VmState.STOPPED if request.stopped else VmState.ACTIVE,
            "power_state": PowerState.SHUTDOWN if request.stopped else PowerState.RUNNING,
            "task_state": None, "launched_at": utcnow()}, [TaskState.REBUILD_SPAWNING])
        await placement.remove_allocations(self.db, held)
        await migrations_records.update(self.db, request.migration_uuid,
                                        {"status": "done" if done else "failed"})
        LOG.info("Evacuated %s from %s to %s", uuid, instance.host, dest.host)

    async def _schedule(self, ctx: RequestContext, instance: Instance,
                        request: EvacuateRequest) -> tuple[Destination, dict[str, Any]]:
        """Claim a destination, record it (task_state rebuild_spawning, the migration
        pre-migrating), move the NICs there; the host and the payload to spawn."""
        zone = (instance.request_spec or {}).get("availability_zone")
        spec = move_spec(instance, zone, request.host)
        if request.force and request.host:
            dest = await self._claim_forced(spec, request.host)
        else:
            dest = (await self.scheduler.select_destinations(ctx, spec))[0]
        await migrations_records.update(self.db, request.migration_uuid, {
            "dest_compute": dest.host, "dest_node": dest.node, "status": "pre-migrating"})
        placed = await place_on(self.db, self.network, instance, dest,
                                TaskState.REBUILD_SPAWNING, TaskState.REBUILDING)
        return dest, payload(placed)

    async def _claim_forced(self, spec: RequestSpec, host: str) -> Destination:
        """A claim on `host` without the scheduler's filters (a forced evacuation)."""
        from novalet.conductor.tasks.base import claim_forced  # the moves' shared one
        uuid = spec.instance_uuids[0]
        dest = await claim_forced(self.db, uuid, uuid, host, spec.resources)
        if dest is None:
            raise NoForcedHost(host=host)
        return dest

    async def _undo(self, uuid: str, request: EvacuateRequest, status: str,
                    instance: Instance | None = None) -> None:
        """The allocations back on the failed host (the NICs too, once moved), the
        migration `status`. A server deleted meanwhile gets nothing back: its held
        allocations (and any new claim) are dropped."""
        alive = await instances.return_held_allocations(self.db, uuid, source_consumer(uuid))
        if instance is not None and alive:
            await self.network.allocate_for_instance(
                uuid, instance.project_id, instance.host, instance.hostname,
                user_id=instance.user_id)
            # the failed host serves its guest again (place_on had it quarantined), and
            # the destination, if one was recorded, drops its floating NAT
            record = await migrations_records.get(self.db, request.migration_uuid)
            await self.network.instance_moved(record.dest_compute if record else None,
                                              instance.host)
        await migrations_records.update(self.db, request.migration_uuid, {"status": status})
