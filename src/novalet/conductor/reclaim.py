"""Reclaims soft-deleted servers once `[DEFAULT] reclaim_instance_interval` has passed.

Nova runs this on each compute host; here the conductor does it, as it has the
database and the compute hosts have not: every interval it deletes for good the
servers SOFT_DELETED (and idle) for longer than the interval, through the host
that runs them (terminate_instance, as a delete does), or at once when that host
is down. Only the compare-and-swap to DELETING decides who deletes, so a second
conductor, or a restore or forceDelete at the same moment, is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.states import TaskState, VmState
from novalet.db import instances, services
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.network.api import NetworkAPI

LOG = logging.getLogger(__name__)


class Reclaimer:
    def __init__(self, conf: config.Config, db: Database, compute: compute_rpcapi.ComputeAPI,
                 network: NetworkAPI, payload: Callable[[Instance], dict[str, Any]]) -> None:
        """`payload`: an instance row as compute hosts receive it (conductor's payload_of)."""
        self.payload = payload
        self.conf = conf
        self.db = db
        self.compute = compute
        self.network = network

    @property
    def interval(self) -> float:
        return float(self.conf.get("DEFAULT", "reclaim_instance_interval"))

    async def run_once(self) -> list[str]:
        """Reclaim what is due; the uuids reclaimed."""
        if self.interval <= 0:
            return []
        due = utcnow() - dt.timedelta(seconds=self.interval)
        rows = await instances.list_instances(self.db, instances.ListQuery(
            vm_states=[VmState.SOFT_DELETED], task_states=[None]))
        done = []
        for row in rows:
            if row.deleted_at is not None and _naive(row.deleted_at) <= _naive(due):
                if await self._reclaim(row):
                    done.append(row.uuid)
        return done

    async def _reclaim(self, instance: Instance) -> bool:
        try:
            instance = await instances.update(
                self.db, instance.uuid, {"task_state": TaskState.DELETING},
                expected_task_state=[None], expected_vm_state=[VmState.SOFT_DELETED])
        except (exceptions.Conflict, exceptions.NotFound):
            return False  # restored, deleted or being reclaimed meanwhile
        LOG.info("Reclaiming soft-deleted instance %s", instance.uuid)
        ctx = RequestContext.admin()
        if instance.host and await services.compute_is_up(
                self.db, instance.host, self.conf.get("DEFAULT", "service_down_time")):
            await self.compute.terminate_instance(ctx, instance.host, self.payload(instance))
        else:
            await instances.destroy(self.db, instance.uuid)
            await self.network.deallocate_for_instance(instance.uuid)
        return True


def _naive(value: dt.datetime) -> dt.datetime:
    """Datetimes compared as UTC without tzinfo (SQLite gives naive ones back)."""
    return value.replace(tzinfo=None) if value.tzinfo else value
