"""Database access for security groups, their rules and instance memberships."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
import uuid as uuidlib
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.db import quotas as db_quotas
from novalet.db import tags
from novalet.db.engine import Database, rows_matched
from novalet.db.models import (Instance, SecurityGroup, SecurityGroupInstance,
                               SecurityGroupRule)


class SecurityGroupNotFound(exceptions.NotFound):
    msg_fmt = "Security group %(security_group_id)s not found."


class SecurityGroupNotFoundForProject(exceptions.NotFound):
    msg_fmt = "Security group %(security_group_id)s not found for project %(project_id)s."


class SecurityGroupExists(exceptions.Invalid):
    msg_fmt = "Security group %(name)s already exists for project %(project_id)s."


class SecurityGroupInUse(exceptions.Invalid):
    msg_fmt = "Security group is still in use"


class SecurityGroupRuleExists(exceptions.Invalid):
    msg_fmt = "This rule already exists in group %(group_id)s"


class SecurityGroupRuleNotFound(exceptions.NotFound):
    msg_fmt = "Rule (%(rule_id)s) not found"


class SecurityGroupExistsForInstance(exceptions.Invalid):
    msg_fmt = ("Security group %(security_group_id)s is already associated with the "
               "instance %(instance_id)s")


class SecurityGroupNotExistsForInstance(exceptions.Invalid):
    msg_fmt = ("Security group %(security_group_id)s is not associated with the "
               "instance %(instance_id)s")


def _groups_query() -> Select[SecurityGroup]:
    return select(SecurityGroup).execution_options(populate_existing=True)


async def _group_by_name(s: AsyncSession, project_id: str, name: str) -> SecurityGroup | None:
    return (await s.execute(_groups_query().where(
        SecurityGroup.project_id == project_id,
        SecurityGroup.name == name))).scalar_one_or_none()


# Neutron's rules of a new group: egress anywhere, IPv4 and IPv6
EGRESS_ANY: tuple[dict[str, Any], ...] = (
    {"direction": "egress", "ethertype": "IPv4"}, {"direction": "egress", "ethertype": "IPv6"})


def _add_rules(s: AsyncSession, group_id: int, rules: Iterable[dict[str, Any]]) -> None:
    for values in rules:
        s.add(SecurityGroupRule(parent_group_id=group_id, **values))


async def ensure_default_group(db: Database, project_id: str, user_id: str | None
                               ) -> SecurityGroup:
    """The project's `default` group, created on first use with Neutron's default
    rules: any traffic from members of the group itself (IPv4 and IPv6), and
    egress anywhere."""
    async with db.transaction() as s:
        group = await _group_by_name(s, project_id, "default")
        if group is not None:
            return group
        try:
            async with s.begin_nested():
                group = SecurityGroup(name="default", description="default",
                                      project_id=project_id, user_id=user_id)
                s.add(group)
                await s.flush()
                _add_rules(s, group.id, [
                    {"group_id": group.id, "ethertype": "IPv4"},
                    {"group_id": group.id, "ethertype": "IPv6"}, *EGRESS_ANY])
        except IntegrityError:
            pass  # created concurrently: read theirs
        created = await _group_by_name(s, project_id, "default")
        assert created is not None
        return created


async def create_group(db: Database, project_id: str, user_id: str | None, name: str,
                       description: str, admit: db_quotas.Admission[None] | None = None,
                       rules: Iterable[dict[str, Any]] = EGRESS_ANY) -> SecurityGroup:
    """Insert a group with `rules` (Neutron's: egress anywhere); with `admit`, the
    security_groups quota decides first, under the project's quota lock."""
    try:
        async with db.transaction() as s:
            if admit is not None:
                await db_quotas.admit_locked(s, project_id, None, admit)
            group = SecurityGroup(name=name, description=description, project_id=project_id,
                                  user_id=user_id)
            s.add(group)
            await s.flush()
            _add_rules(s, group.id, rules)
            await s.flush()
            created: SecurityGroup = (await s.execute(_groups_query().where(
                SecurityGroup.id == group.id))).scalar_one()
            return created
    except IntegrityError:
        raise SecurityGroupExists(name=name, project_id=project_id) from None


async def get_group(db: Database, group_id: int | str, project_id: str | None = None
                    ) -> SecurityGroup:
    """The group by uuid (a str) or integer id; SecurityGroupNotFound when missing
    or (project_id given) of another project."""
    column = SecurityGroup.uuid if isinstance(group_id, str) else SecurityGroup.id
    query = _groups_query().where(column == group_id)
    if project_id is not None:
        query = query.where(SecurityGroup.project_id == project_id)
    async with db.transaction() as s:
        group = (await s.execute(query)).scalar_one_or_none()
    if group is None:
        raise SecurityGroupNotFound(security_group_id=group_id)
    return group


async def get_group_by_name(db: Database, project_id: str, name: str) -> SecurityGroup:
    async with db.transaction() as s:
        group = await _group_by_name(s, project_id, name)
    if group is None:
        raise SecurityGroupNotFoundForProject(security_group_id=name, project_id=project_id)
    return group


async def groups_by_names(db: Database, project_id: str, names: Sequence[str]
                          ) -> dict[str, SecurityGroup]:
    async with db.transaction() as s:
        groups = (await s.execute(_groups_query().where(
            SecurityGroup.project_id == project_id,
            SecurityGroup.name.in_(list(names))))).scalars()
        return {g.name: g for g in groups}


async def list_groups(db: Database, project_id: str | None) -> list[SecurityGroup]:
    """The project's groups (None: every project's), by project and name."""
    query = _groups_query().order_by(SecurityGroup.project_id, SecurityGroup.name)
    if project_id is not None:
        query = query.where(SecurityGroup.project_id == project_id)
    async with db.transaction() as s:
        return list((await s.execute(query)).scalars())


async def group_names(db: Database, group_ids: Iterable[int]
                      ) -> dict[int, tuple[str, str, str]]:
    """id -> (uuid, name, project_id) of the groups: how the compute API names a
    rule's group and its source group."""
    ids = list(set(group_ids))
    if not ids:
        return {}
    async with db.transaction() as s:
        rows = (await s.execute(select(SecurityGroup.id, SecurityGroup.uuid, SecurityGroup.name,
                                       SecurityGroup.project_id).where(
            SecurityGroup.id.in_(ids)))).all()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def update_group(db: Database, group_id: int, name: str, description: str
                       ) -> SecurityGroup:
    try:
        async with db.transaction() as s:
            group = (await s.execute(_groups_query().where(
                SecurityGroup.id == group_id))).scalar_one_or_none()
            if group is None:
                raise SecurityGroupNotFound(security_group_id=group_id)
            project_id: str = group.project_id
            group.name, group.description = name, description
            await s.flush()
            updated: SecurityGroup = group
            return updated
    except IntegrityError:
        raise SecurityGroupExists(name=name, project_id=project_id) from None


async def _group_in_use(s: AsyncSession, group_id: int) -> bool:
    used = (await s.execute(
        select(SecurityGroupInstance.instance_uuid)
        .join(Instance, Instance.uuid == SecurityGroupInstance.instance_uuid)
        .where(SecurityGroupInstance.security_group_id == group_id,
               Instance.deleted.is_(False)).limit(1))).first()
    return used is not None


async def delete_group(db: Database, group_id: int) -> None:
    """Delete a group, its rules and the rules of other groups that name it as a
    source; SecurityGroupInUse while a live instance is a member."""
    async with db.transaction() as s:
        if await _group_in_use(s, group_id):
            raise SecurityGroupInUse()
        await s.execute(delete(SecurityGroupRule).where(
            (SecurityGroupRule.parent_group_id == group_id)
            | (SecurityGroupRule.group_id == group_id)))
        await s.execute(delete(SecurityGroupInstance).where(
            SecurityGroupInstance.security_group_id == group_id))
        await tags.forget(s, "security-groups", select(SecurityGroup.uuid).where(
            SecurityGroup.id == group_id))
        result = await s.execute(delete(SecurityGroup).where(SecurityGroup.id == group_id))
    if rows_matched(result) == 0:
        raise SecurityGroupNotFound(security_group_id=group_id)


_RULE_KEYS = ("group_id", "cidr", "from_port", "to_port", "protocol", "direction",
              "ethertype")
_RULE_DEFAULTS = {"direction": "ingress", "ethertype": "IPv4"}


async def create_rule(db: Database, parent_group_id: int, values: dict[str, Any],
                      admit: Callable[[int], None] | None = None, project_id: str = ""
                      ) -> SecurityGroupRule:
    """Add a rule to a group; SecurityGroupRuleExists when one with the same source,
    protocol and ports is there already. `admit` gets the number of rules the group
    would have, under project_id's quota lock."""
    async with db.transaction() as s:
        if admit is not None:
            await db_quotas.lock_project(s, project_id)
        existing = list((await s.execute(select(SecurityGroupRule).where(
            SecurityGroupRule.parent_group_id == parent_group_id))).scalars())
        values = {**_RULE_DEFAULTS, **values}
        if admit is not None:
            # the limit counts the rules of one direction: a group's egress rules
            # (every group has two) do not eat into the ingress rules it always had
            admit(sum(r.direction == values["direction"] for r in existing) + 1)
        for rule in existing:
            if all(getattr(rule, k) == values.get(k) for k in _RULE_KEYS):
                raise SecurityGroupRuleExists(group_id=parent_group_id, rule_id=rule.uuid)
        rule = SecurityGroupRule(parent_group_id=parent_group_id,
                                 description=values.get("description") or "",
                                 **{k: values.get(k) for k in _RULE_KEYS})
        s.add(rule)
        await s.flush()
        return rule


async def get_rule(db: Database, rule_id: int | str) -> SecurityGroupRule:
    """The rule by uuid (a str) or integer id."""
    column = SecurityGroupRule.uuid if isinstance(rule_id, str) else SecurityGroupRule.id
    async with db.transaction() as s:
        rule = (await s.execute(select(SecurityGroupRule).where(
            column == rule_id))).scalar_one_or_none()
    if rule is None:
        raise SecurityGroupRuleNotFound(rule_id=rule_id)
    return rule


async def delete_rule(db: Database, rule_id: int) -> None:
    async with db.transaction() as s:
        result = await s.execute(delete(SecurityGroupRule).where(
            SecurityGroupRule.id == rule_id))
    if rows_matched(result) == 0:
        raise SecurityGroupRuleNotFound(rule_id=rule_id)


async def add_instance_groups(db: Database, instance_uuids: Sequence[str],
                              group_ids: Sequence[int], only_if_none: bool = False) -> None:
    """Make the instances members of the groups (memberships they have are kept).
    only_if_none: skip instances that are members of any group already."""
    async with db.transaction() as s:
        have = set((await s.execute(select(
            SecurityGroupInstance.instance_uuid, SecurityGroupInstance.security_group_id
        ).where(SecurityGroupInstance.instance_uuid.in_(list(instance_uuids))))).all())
        members = {uuid for uuid, _ in have}
        for uuid in instance_uuids:
            if only_if_none and uuid in members:
                continue
            for group_id in dict.fromkeys(group_ids):
                if (uuid, group_id) not in have:
                    s.add(SecurityGroupInstance(security_group_id=group_id, instance_uuid=uuid))


async def add_instance_group(db: Database, instance_uuid: str, group_id: int) -> None:
    try:
        async with db.transaction() as s:
            s.add(SecurityGroupInstance(security_group_id=group_id, instance_uuid=instance_uuid))
    except IntegrityError:
        raise SecurityGroupExistsForInstance(security_group_id=group_id,
                                             instance_id=instance_uuid) from None


async def remove_instance_group(db: Database, instance_uuid: str, group_id: int) -> None:
    async with db.transaction() as s:
        result = await s.execute(delete(SecurityGroupInstance).where(
            SecurityGroupInstance.instance_uuid == instance_uuid,
            SecurityGroupInstance.security_group_id == group_id))
    if rows_matched(result) == 0:
        raise SecurityGroupNotExistsForInstance(security_group_id=group_id,
                                                instance_id=instance_uuid)


async def instance_groups(db: Database, instance_uuids: Sequence[str]
                          ) -> dict[str, list[SecurityGroup]]:
    """Each instance's groups (with their rules), by name."""
    async with db.transaction() as s:
        return await groups_of_instances(s, instance_uuids)


async def groups_of_instances(s: AsyncSession, instance_uuids: Sequence[str]
                           ) -> dict[str, list[SecurityGroup]]:
    result: dict[str, list[SecurityGroup]] = defaultdict(list)
    if not instance_uuids:
        return result
    rows = (await s.execute(
        select(SecurityGroupInstance.instance_uuid, SecurityGroup)
        .join(SecurityGroup, SecurityGroup.id == SecurityGroupInstance.security_group_id)
        .where(SecurityGroupInstance.instance_uuid.in_(list(instance_uuids)))
        .order_by(SecurityGroup.name))).all()
    for uuid, group in rows:
        result[uuid].append(group)
    return result


async def instance_group_names(db: Database, instance_uuids: Sequence[str]
                               ) -> dict[str, list[str]]:
    """Each instance's group names, in one query (for server views)."""
    result: dict[str, list[str]] = defaultdict(list)
    if not instance_uuids:
        return result
    async with db.transaction() as s:
        rows = (await s.execute(
            select(SecurityGroupInstance.instance_uuid, SecurityGroup.name)
            .join(SecurityGroup, SecurityGroup.id == SecurityGroupInstance.security_group_id)
            .where(SecurityGroupInstance.instance_uuid.in_(list(instance_uuids)))
            .order_by(SecurityGroup.name))).all()
    for uuid, name in rows:
        result[uuid].append(name)
    return result


# --- by uuid, for the network API (network/neutron_security_groups.py) ---

async def fill_missing_uuids(db: Database) -> int:
    """Give a uuid to each group and rule a process of the release before 0016
    wrote without one (a rolling upgrade); how many it filled."""
    filled = 0
    async with db.transaction() as s:
        for model in (SecurityGroup, SecurityGroupRule):
            ids = (await s.execute(select(model.id).where(model.uuid.is_(None)))).scalars()
            for row_id in ids.all():
                await s.execute(update(model).where(model.id == row_id, model.uuid.is_(None))
                                .values(uuid=str(uuidlib.uuid4())))
                filled += 1
    return filled


async def list_rules(db: Database, project_id: str | None
                     ) -> list[tuple[SecurityGroupRule, SecurityGroup]]:
    """Every rule of the project's groups (None: of every group), with its group."""
    query = (select(SecurityGroupRule, SecurityGroup)
             .join(SecurityGroup, SecurityGroup.id == SecurityGroupRule.parent_group_id)
             .order_by(SecurityGroupRule.id).execution_options(populate_existing=True))
    if project_id is not None:
        query = query.where(SecurityGroup.project_id == project_id)
    async with db.transaction() as s:
        return [(rule, group) for rule, group in (await s.execute(query)).all()]


async def group_uuids(db: Database, group_ids: Iterable[int]) -> dict[int, str]:
    """id -> uuid of the groups (how the network API names a rule's groups)."""
    ids = list(set(group_ids))
    if not ids:
        return {}
    async with db.transaction() as s:
        rows = (await s.execute(select(SecurityGroup.id, SecurityGroup.uuid).where(
            SecurityGroup.id.in_(ids)))).all()
    return {row[0]: row[1] for row in rows}
