"""Usage reports (os-simple-tenant-usage): hours and resource-hours of each project's
instances over a period, deleted instances included."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from novalet.db import usage as db_usage
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.db.usage import UsageMarkerNotFound

__all__ = ["ServerUsage", "TenantUsage", "UsageMarkerNotFound", "hours_for", "usage_report"]


def hours_for(launched_at: dt.datetime | None, terminated_at: dt.datetime | None,
              start: dt.datetime, end: dt.datetime) -> float:
    """Hours of [start, end] the instance was up: from launch (or start) to
    termination (or end); zero if never launched or outside the period."""
    if launched_at is None:
        return 0.0
    if terminated_at is not None and terminated_at < start:
        return 0.0
    if launched_at > end:
        return 0.0
    stop = min(end, terminated_at) if terminated_at is not None else end
    return (stop - max(launched_at, start)).total_seconds() / 3600.0


@dataclass
class ServerUsage:
    instance: Instance
    hours: float
    now: dt.datetime

    @property
    def flavor(self) -> dict[str, Any]:
        return self.instance.flavor or {}

    @property
    def memory_mb(self) -> int:
        return int(self.flavor.get("memory_mb", 0))

    @property
    def vcpus(self) -> int:
        return int(self.flavor.get("vcpus", 0))

    @property
    def local_gb(self) -> int:
        return int(self.flavor.get("root_gb", 0)) + int(self.flavor.get("ephemeral_gb", 0))

    @property
    def state(self) -> str:
        return "terminated" if self.instance.terminated_at else self.instance.vm_state

    @property
    def uptime(self) -> int:
        """Seconds from launch to termination (or now); 0 if never launched."""
        started = self.instance.launched_at
        if started is None:
            return 0
        ended = self.instance.terminated_at or self.now
        return int((ended - started).total_seconds())


@dataclass
class TenantUsage:
    tenant_id: str
    start: dt.datetime
    stop: dt.datetime
    servers: list[ServerUsage] = field(default_factory=list)

    @property
    def total_hours(self) -> float:
        return sum(s.hours for s in self.servers)

    @property
    def total_vcpus_usage(self) -> float:
        return sum(s.vcpus * s.hours for s in self.servers)

    @property
    def total_memory_mb_usage(self) -> float:
        return sum(s.memory_mb * s.hours for s in self.servers)

    @property
    def total_local_gb_usage(self) -> float:
        return sum(s.local_gb * s.hours for s in self.servers)


async def usage_report(db: Database, start: dt.datetime, end: dt.datetime, *,
                       now: dt.datetime, project_id: str | None = None,
                       limit: int | None = None, marker: str | None = None
                       ) -> tuple[list[TenantUsage], list[Instance]]:
    """Per-project usage over [start, end] (one project's with `project_id`), in the
    order projects first appear; with the page of instances it was computed from
    (`limit` and `marker` page over instances, as Nova's do)."""
    rows = await db_usage.active_in_window(db, start, end, project_id=project_id,
                                           limit=limit, marker=marker)
    tenants: dict[str, TenantUsage] = {}
    for instance in rows:
        tenant = tenants.setdefault(instance.project_id,
                                    TenantUsage(instance.project_id, start, end))
        tenant.servers.append(ServerUsage(
            instance, hours_for(instance.launched_at, instance.terminated_at, start, end),
            now))
    return list(tenants.values()), rows
