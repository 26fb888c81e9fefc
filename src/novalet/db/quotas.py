"""Database access for quota limits (per project, per user, per class) and usage.

Usage is counted from the rows themselves (instances, key pairs), never kept as a
counter. A create that must stay within a quota locks its project's row in
`quota_locks` first (`lock_project`), then counts and inserts in the same
transaction, so concurrent creates of one project take turns and each counts
what the ones before it committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from novalet.db.engine import Database, rows_matched
from novalet.db.models import (FloatingIp, Instance, KeyPair, Network, ProjectQuota,
                               ProjectUserQuota, QuotaClass, QuotaLock, Router, SecurityGroup,
                               SecurityGroupRule, ServerGroup, Subnet, VirtualInterface)

DEFAULT_CLASS = "default"
# Every usage this module counts.
COUNTED = ("instances", "cores", "ram", "key_pairs", "server_groups", "floating_ips",
           "security_groups")
_T_co = TypeVar("_T_co", covariant=True)


@dataclass
class QuotaRecords:
    """What the database holds for one project (and user): stored limits by resource
    and what is in use. Resources without a stored limit are absent."""

    class_limits: dict[str, int] = field(default_factory=dict)
    project_limits: dict[str, int] = field(default_factory=dict)
    user_limits: dict[str, int] = field(default_factory=dict)
    project_usage: dict[str, int] = field(default_factory=dict)
    user_usage: dict[str, int] = field(default_factory=dict)


class Admission(Protocol[_T_co]):
    """A quota decision made inside a create's transaction (compute/quotas.py)."""

    def counted(self, records: QuotaRecords) -> Collection[str]:
        """Which usages the decision needs, given the limits in records (none when
        they are unlimited: a cloud without limits counts nothing)."""

    def __call__(self, records: QuotaRecords) -> _T_co:
        """Decide from limits and the counted usage; raise when over quota."""


# --- the per-project lock ---------------------------------------------------

async def lock_project(s: AsyncSession, project_id: str) -> None:
    """Take the project's quota lock for the rest of the transaction s.

    An UPDATE of the project's lock row: PostgreSQL and MariaDB hold its row lock
    until commit, so a second transaction waits here until the first committed
    (and, at READ COMMITTED, then counts the first one's rows). On SQLite the
    UPDATE opens the write transaction before anything is read, and one process
    serialises its transactions anyway. The row is made on first use; a racing
    maker's row is kept (insert-or-ignore) and then locked the same way."""
    bump = (update(QuotaLock).where(QuotaLock.project_id == project_id)
            .values(generation=QuotaLock.generation + 1)
            .execution_options(synchronize_session=False))
    if rows_matched(await s.execute(bump)):
        return
    await s.execute(_insert_ignore(s, {"project_id": project_id, "generation": 0}))
    await s.execute(bump)


def _insert_ignore(s: AsyncSession, values: dict[str, Any]) -> Any:
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(QuotaLock).values(**values).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        return mysql.insert(QuotaLock).values(**values).prefix_with("IGNORE")
    return sqlite.insert(QuotaLock).values(**values).on_conflict_do_nothing()


# --- reading limits and usage -------------------------------------------------

async def records(db: Database, project_id: str, user_id: str | None = None) -> QuotaRecords:
    """Stored limits and usage of a project (and user), without locking."""
    async with db.transaction() as s:
        return await read_records(s, project_id, user_id)


async def admit_locked(s: AsyncSession, project_id: str, user_id: str | None,
                       admit: Admission[_T_co]) -> _T_co:
    """Take the project's quota lock, read its limits and the usage admit needs, and
    return admit's decision: for a check whose insert follows in s."""
    await lock_project(s, project_id)
    records = await read_records(s, project_id, user_id, counted=())
    wanted = admit.counted(records)
    if wanted:
        records.project_usage, records.user_usage = await _usage(s, project_id, user_id,
                                                                 wanted)
    return admit(records)


async def read_records(s: AsyncSession, project_id: str, user_id: str | None,
                       counted: Collection[str] = COUNTED) -> QuotaRecords:
    result = QuotaRecords(class_limits=await _class_limits(s, DEFAULT_CLASS))
    rows = await s.execute(select(ProjectQuota.resource, ProjectQuota.hard_limit).where(
        ProjectQuota.project_id == project_id))
    result.project_limits = {r: limit for r, limit in rows.all()}
    if user_id is not None:
        rows = await s.execute(select(ProjectUserQuota.resource, ProjectUserQuota.hard_limit)
                               .where(ProjectUserQuota.project_id == project_id,
                                      ProjectUserQuota.user_id == user_id))
        result.user_limits = {r: limit for r, limit in rows.all()}
    if counted:
        result.project_usage, result.user_usage = await _usage(s, project_id, user_id,
                                                               counted)
    return result


async def _class_limits(s: AsyncSession, class_name: str) -> dict[str, int]:
    rows = await s.execute(select(QuotaClass.resource, QuotaClass.hard_limit).where(
        QuotaClass.class_name == class_name))
    return {r: limit for r, limit in rows.all()}


async def _usage(s: AsyncSession, project_id: str, user_id: str | None,
                 counted: Collection[str]) -> tuple[dict[str, int], dict[str, int]]:
    """(project usage, user usage) of the `counted` resources: instances, cores and
    ram of live instances for both (summed by the database, one row per user);
    key_pairs for the user (key pairs belong to users, not projects); server_groups,
    floating_ips and security_groups for the project."""
    project: dict[str, int] = {}
    user: dict[str, int] = {}
    if {"instances", "cores", "ram"} & set(counted):
        rows = (await s.execute(
            select(Instance.user_id, func.count(Instance.id),
                   func.sum(_flavor_amount("vcpus")), func.sum(_flavor_amount("memory_mb")))
            .where(Instance.project_id == project_id, Instance.deleted.is_(False))
            .group_by(Instance.user_id))).all()
        for scope, chosen in ((project, rows), (user, [r for r in rows if r[0] == user_id])):
            scope.update(instances=sum(int(r[1] or 0) for r in chosen),
                         cores=sum(int(r[2] or 0) for r in chosen),
                         ram=sum(int(r[3] or 0) for r in chosen))
    if user_id is not None and "key_pairs" in counted:
        user["key_pairs"] = (await s.execute(select(func.count(KeyPair.id)).where(
            KeyPair.user_id == user_id))).scalar_one()
    for resource, column in (("server_groups", ServerGroup.project_id),
                             ("floating_ips", FloatingIp.project_id),
                             ("security_groups", SecurityGroup.project_id)):
        if resource in counted:
            project[resource] = (await s.execute(select(func.count()).where(
                column == project_id))).scalar_one()
    if user_id is None:
        user = {}
    return project, user


async def network_usage(db: Database, project_id: str) -> dict[str, int]:
    """What a project holds of what the network API's quotas count, counted as the
    creates that check them count: networks, subnets, ports (its servers' NICs too),
    floating IPs, security groups, and security_group_rules as the most rules one
    of its groups has (the limit is per group here, as nova-network had it)."""
    servers = select(Instance.uuid).where(Instance.project_id == project_id)
    rules_per_group = (select(func.count(SecurityGroupRule.id).label("n"))
                       .join(SecurityGroup, SecurityGroup.id == SecurityGroupRule.parent_group_id)
                       .where(SecurityGroup.project_id == project_id)
                       .group_by(SecurityGroupRule.parent_group_id).subquery())
    counts = {
        "networks": select(func.count(Network.id)).where(
            Network.project_id == project_id, Network.deleted.is_(False)),
        "subnets": select(func.count(Subnet.id)).where(Subnet.project_id == project_id),
        "ports": select(func.count(VirtualInterface.id)).where(
            (VirtualInterface.project_id == project_id)
            | (VirtualInterface.project_id.is_(None)
               & VirtualInterface.instance_uuid.in_(servers))),
        "floating_ips": select(func.count(FloatingIp.id)).where(
            FloatingIp.project_id == project_id),
        "security_groups": select(func.count(SecurityGroup.id)).where(
            SecurityGroup.project_id == project_id),
        "security_group_rules": select(func.coalesce(func.max(rules_per_group.c.n), 0)),
        "routers": select(func.count(Router.id)).where(Router.project_id == project_id),
    }
    async with db.transaction() as s:
        return {name: int((await s.execute(query)).scalar_one())
                for name, query in counts.items()}


async def projects_with_limits(db: Database, resources: Collection[str]
                               ) -> dict[str, dict[str, int]]:
    """project -> its own stored limits, for the projects that store one of resources."""
    found: dict[str, dict[str, int]] = {}
    async with db.transaction() as s:
        rows = await s.execute(select(ProjectQuota.project_id, ProjectQuota.resource,
                                      ProjectQuota.hard_limit)
                               .where(ProjectQuota.resource.in_(list(resources)))
                               .order_by(ProjectQuota.project_id))
        for project_id, resource, limit in rows:
            found.setdefault(project_id, {})[resource] = limit
    return found


# A resize holds the larger of both flavors until it is confirmed or reverted:
# while it runs the instance's flavor is the old one (the new one waits in
# system_metadata), once it is RESIZED the flavor is the new one (the old one waits).
_RESIZING = ("resize_prep", "resize_migrating", "resize_migrated", "resize_finish")


def _flavor_amount(key: str) -> Any:
    """SQL for what one instance counts of a flavor field."""
    current = Instance.flavor[key].as_integer()
    other = case(
        (Instance.task_state.in_(_RESIZING),
         Instance.system_metadata[("new_flavor", key)].as_integer()),
        (Instance.vm_state == "resized",
         Instance.system_metadata[("old_flavor", key)].as_integer()),
        else_=current)
    return case((other > current, other), else_=current)


async def class_limits(db: Database, class_name: str) -> dict[str, int]:
    async with db.transaction() as s:
        return await _class_limits(s, class_name)


# --- writing limits -----------------------------------------------------------

async def set_project_limits(db: Database, project_id: str, values: Mapping[str, int]) -> None:
    async with db.transaction() as s:
        await lock_project(s, project_id)
        await _upsert(s, ProjectQuota, {"project_id": project_id}, values)


async def set_user_limits(db: Database, project_id: str, user_id: str,
                          values: Mapping[str, int]) -> None:
    async with db.transaction() as s:
        await lock_project(s, project_id)
        await _upsert(s, ProjectUserQuota, {"project_id": project_id, "user_id": user_id},
                      values)


async def set_class_limits(db: Database, class_name: str, values: Mapping[str, int]) -> None:
    async with db.transaction() as s:
        # A lock row of its own, so two writers of one class don't race an insert.
        digest = hashlib.sha256(class_name.encode()).hexdigest()
        await lock_project(s, f"quota-class:{digest}")
        await _upsert(s, QuotaClass, {"class_name": class_name}, values)


async def _upsert(s: AsyncSession, model: Any, keys: dict[str, str],
                  values: Mapping[str, int]) -> None:
    """Set hard_limit per resource on the rows named by keys (the caller holds the
    lock that keeps a concurrent writer from inserting the same rows)."""
    where = [getattr(model, k) == v for k, v in keys.items()]
    existing = {row.resource: row for row in (await s.execute(
        select(model).where(*where))).scalars()}
    for resource, limit in values.items():
        if resource in existing:
            existing[resource].hard_limit = limit
        else:
            s.add(model(**keys, resource=resource, hard_limit=limit))
    await s.flush()


async def delete_project_limits(db: Database, project_id: str) -> None:
    """Forget a project's own limits and those of its users."""
    async with db.transaction() as s:
        await lock_project(s, project_id)
        await s.execute(delete(ProjectQuota).where(ProjectQuota.project_id == project_id))
        await s.execute(delete(ProjectUserQuota).where(
            ProjectUserQuota.project_id == project_id))


async def delete_user_limits(db: Database, project_id: str, user_id: str) -> None:
    async with db.transaction() as s:
        await lock_project(s, project_id)
        await s.execute(delete(ProjectUserQuota).where(
            ProjectUserQuota.project_id == project_id, ProjectUserQuota.user_id == user_id))


async def delete_project_resources(db: Database, project_id: str,
                                   resources: Collection[str]) -> None:
    """Forget a project's own limits of `resources` only (the others stay)."""
    async with db.transaction() as s:
        await lock_project(s, project_id)
        await s.execute(delete(ProjectQuota).where(
            ProjectQuota.project_id == project_id,
            ProjectQuota.resource.in_(list(resources))))
