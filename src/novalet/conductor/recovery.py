"""Builds a dead service left behind: found by the conductor, failed with a fault.

A build stuck in BUILD is one of two kinds: scheduled to a compute host whose
service stopped reporting (it died mid-build) while this conductor could hear
it, or never scheduled at all within `[conductor] scheduling_timeout`. Either becomes ERROR with a fault
that says why, and its resource claims are freed, so nothing waits forever and
no allocation leaks. A compute service that comes back cleans up its own
guests on start (compute/power_sync.recover).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from novalet import config, exceptions
from novalet.common.timeutils import utcnow
from novalet.compute.states import TaskState, VmState
from novalet.db import instances, services
from novalet.db.engine import Database
from novalet.db.models import Instance

LOG = logging.getLogger(__name__)
Fail = Callable[[str, str, list[str | None]], Awaitable[None]]


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
