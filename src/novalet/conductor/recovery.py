"""Builds a dead service left behind: found by the conductor, failed with a fault.

A build stuck in BUILD is one of two kinds: scheduled to a compute host whose
service stopped reporting (it died mid-build) while this conductor could hear
it, or never scheduled at all within `[conductor] scheduling_timeout`. Either becomes ERROR with a fault
that says why, and its resource claims are freed, so nothing waits forever and
no allocation leaks. A compute service that comes back cleans up its own
guests on start (compute/power_sync.recover).

At start, on a bus that loses what it holds when its process dies (the
in-process bus of `novalet up`), the builds accepted before this start and never
scheduled are re-driven: the request spec ComputeAPI.create kept on their
instance rows (as Nova's request_specs table keeps it: zone, forced host and node,
hints, group) runs through the conductor's build flow again, so a `kill -9` right
after accepting creates costs no `scheduling_timeout`. A durable bus (RabbitMQ)
hands unacknowledged casts on by itself; re-driving there would only add a
concurrent second delivery, so it is left to the broker (and to the timeout
for a create whose API process died before it published).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.compute.payloads import RequestSpec
from novalet.compute.states import TaskState, VmState
from novalet.db import instances, services
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.rpc.bus import Bus
from novalet.rpc.inprocess import InProcessBus

LOG = logging.getLogger(__name__)
Fail = Callable[[str, str, list[str | None]], Awaitable[None]]
Build = Callable[[RequestContext, dict[str, Any]], Awaitable[None]]


class BuildRecovery:
    def __init__(self, conf: config.Config, db: Database, fail: Fail,
                 listening_since: Callable[[], dt.datetime]) -> None:
        """fail(uuid, reason, expected task states): records the fault, ERROR, frees.
        listening_since(): since when heartbeats could reach us (our bus connection)."""
        self.conf = conf
        self.db = db
        self.fail = fail
        self.listening_since = listening_since

    async def run_once(self) -> int:
        """Fail every abandoned build; returns how many."""
        building = await instances.list_instances(self.db, instances.ListQuery(
            vm_states=[VmState.BUILDING], sort=[("created_at", "asc"), ("id", "asc")]))
        if not building:
            return 0
        down = await self._down_hosts()
        failed = 0
        for instance in building:
            reason = self._abandoned(instance, down)
            if reason is None:
                continue
            try:
                await self.fail(instance.uuid, reason, [instance.task_state])
                failed += 1
            except (exceptions.NotFound, exceptions.Conflict):
                pass  # it moved on (or was deleted) meanwhile: not abandoned
        return failed

    def _abandoned(self, instance: Instance, down: set[str]) -> str | None:
        if instance.host and instance.host in down:
            return (f"The compute service on {instance.host} stopped reporting during "
                    "the build")
        timeout = self.conf.get("conductor", "scheduling_timeout")
        waited = (utcnow() - (instance.updated_at or instance.created_at)).total_seconds()
        if instance.task_state == TaskState.SCHEDULING and timeout > 0 and waited > timeout:
            return f"The build was not scheduled within {timeout:g} seconds"
        return None

    async def _down_hosts(self) -> set[str]:
        """Compute hosts silent for service_down_time while we could have heard them
        (after a broker restart, everyone is silent for a while: that's no death)."""
        down_time = self.conf.get("DEFAULT", "service_down_time")
        since = self.listening_since()
        if since == dt.datetime.max or (utcnow() - since).total_seconds() <= 2 * down_time:
            return set()
        return {s.host for s in await services.list_services(self.db, "nova-compute")
                if not services.is_up(s, down_time)}


class LostBuilds:
    """Re-drives, once at start, the builds whose cast a dead process took with it."""

    def __init__(self, db: Database, build: Build) -> None:
        """build(ctx, spec dict): the conductor's build_instances (it schedules only
        instances still scheduling, so a build that moved on meanwhile is left alone)."""
        self.db = db
        self.build = build
        self._task: asyncio.Task[int] | None = None
        self._serving = asyncio.Event()

    def start(self, bus: Bus, started_at: dt.datetime) -> None:
        """Re-drive (in the background) if `bus` lost its casts with the last process."""
        if not isinstance(bus, InProcessBus):  # a broker hands them on itself
            return
        self._task = asyncio.create_task(self.run(started_at), name="build re-drive")

    def serving(self) -> None:
        """Every service of this process listens now: re-drive (all-in-one calls
        this when its start is done; the conductor starts first)."""
        self._serving.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self, started_at: dt.datetime) -> int:
        """Re-drive the builds accepted before `started_at` and never placed, once
        every service listens; how many."""
        try:
            lost = await instances.list_instances(self.db, instances.ListQuery(
                vm_states=[VmState.BUILDING], task_states=[TaskState.SCHEDULING],
                sort=[("created_at", "asc"), ("id", "asc")]))
            # Placed ones (host set) are settled by their host's own start-up recovery.
            lost = [i for i in lost if not i.host
                    and (i.updated_at or i.created_at) < started_at]
            if not lost:
                return 0
            await self._serving.wait()  # the hosts its casts go to must be listening
        except asyncio.CancelledError:
            raise
        except Exception:  # the periodic timeout still catches what this misses
            LOG.exception("Looking for lost builds failed")
            return 0
        requests: dict[str, list[Instance]] = {}
        for instance in lost:  # one spec per create request, as it was cast
            requests.setdefault(instance.reservation_id, []).append(instance)
        redriven = 0
        for rows in requests.values():
            uuids = ", ".join(r.uuid for r in rows)
            try:
                spec = self._spec_of(rows)
                if spec is None:
                    LOG.warning("Not re-driving the build of %s: it has no kept request "
                                "spec (the scheduling timeout settles it)", uuids)
                    continue
                LOG.warning("Re-driving the build of %s: its cast was lost when the cloud "
                            "stopped", uuids)
                await self.build(_owner_context(rows[0]), spec.to_dict())
                redriven += len(rows)
            except Exception:  # the periodic timeout still catches what this misses
                LOG.exception("Re-driving the build of %s failed", uuids)
        return redriven

    @staticmethod
    def _spec_of(rows: list[Instance]) -> RequestSpec | None:
        """The request spec of one create request as ComputeAPI.create made and kept it
        (zone, forced host and node, hints, group), for the rows still waiting; None
        for rows created before specs were kept."""
        kept = rows[0].request_spec
        if not kept:
            return None
        return RequestSpec.from_dict({**kept, "instance_uuids": [r.uuid for r in rows]})


def _owner_context(instance: Instance) -> RequestContext:
    """The instance owner's context (the actions and events record who asked)."""
    return RequestContext(user_id=instance.user_id, project_id=instance.project_id)
