"""Security groups and rules as the network API (Neutron) has them: uuids,
ingress and egress rules with an ethertype, Neutron's default rules and errors.

The same rows as the compute API's os-security-groups proxy (which shows the
integer ids and a group's ingress rules), so a change through either face is
seen by both and reaches the hosts' firewalls at once. Scope: a member sees and
changes its own project's groups, a reader only sees them, an admin sees every
project's; another project's group or rule is a 404.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import security_groups as db_groups
from novalet.db.models import SecurityGroup, SecurityGroupRule
from novalet.network.neutron_rule_checks import check_rule, protocol_number
from novalet.network.project_ids import check_project_id
from novalet.network.security_groups import SecurityGroupsMixin

LOG = logging.getLogger(__name__)


class SecurityGroupNotFound(exceptions.NotFound):
    msg_fmt = "Security group %(id)s does not exist"


class SecurityGroupRuleNotFound(exceptions.NotFound):
    msg_fmt = "Security group rule %(id)s does not exist"


class SecurityGroupRuleExists(exceptions.Conflict):
    msg_fmt = "Security group rule already exists. Rule id is %(rule_id)s."


class SecurityGroupInUse(exceptions.Conflict):
    msg_fmt = "Security Group %(id)s in use."


class SecurityGroupCannotRemoveDefault(exceptions.Conflict):
    msg_fmt = "Insufficient rights for removing default security group."


class SecurityGroupCannotUpdateDefault(exceptions.Conflict):
    msg_fmt = "Updating default security group not allowed."


class SecurityGroupDefaultAlreadyExists(exceptions.Conflict):
    msg_fmt = "Default security group already exists."


class SecurityGroupNameExists(exceptions.Conflict):
    neutron_type = "SecurityGroupConflict"
    # Neutron allows two groups of one name; the compute API's proxy finds groups
    # by name, so names stay unique per project here.
    msg_fmt = ("Security group %(name)s already exists in project %(project_id)s: "
               "choose another name.")


class SecurityGroupStatelessNotSupported(exceptions.Invalid):
    msg_fmt = "Stateless security groups are not supported here: leave stateful true."


class InvalidInput(exceptions.Invalid):
    msg_fmt = "Invalid input for %(attr)s. Reason: %(reason)s."


def _text(value: Any, attr: str) -> str:
    """A name or description: a string of at most 255 characters (Neutron's limit,
    and the columns')."""
    if not isinstance(value, str):
        raise InvalidInput(attr=attr, reason=f"'{value}' is not a valid string")
    if len(value) > 255:
        raise InvalidInput(attr=attr, reason=f"'{value[:20]}...' exceeds maximum length of 255")
    return value


class OverQuota(exceptions.Conflict):
    msg_fmt = "Quota exceeded for resources: ['%(overs)s']."


@dataclass(frozen=True)
class RuleView:
    """A rule with Neutron's fields (ports of ICMP rules are its type and code)."""

    id: str
    security_group_id: str
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None
    description: str
    project_id: str
    created_at: dt.datetime
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class GroupView:
    """A group with Neutron's fields and its rules (both directions)."""

    id: str
    name: str
    description: str
    project_id: str
    stateful: bool
    security_group_rules: tuple[RuleView, ...]
    created_at: dt.datetime
    updated_at: dt.datetime | None


class NeutronSecurityGroups:
    """The network API's security group service over NetworkAPI's groups."""

    def __init__(self, network: SecurityGroupsMixin) -> None:
        self.network = network
        self.db = network.db

    # --- groups -----------------------------------------------------------

    async def list_groups(self, ctx: RequestContext) -> list[GroupView]:
        """ctx's project's groups (its default group made on first sight); an
        admin's list has every project's."""
        self._check(ctx, "get_security_group", ctx.project_id)
        await self._ensure_default(ctx)
        groups = await db_groups.list_groups(self.db, self._scope(ctx))
        return await self._group_views(groups)

    async def get_group(self, ctx: RequestContext, group_id: str) -> GroupView:
        group = await self._group(ctx, group_id)
        self._check(ctx, "get_security_group", group.project_id)
        (view,) = await self._group_views([group])
        return view

    async def create_group(self, ctx: RequestContext, name: str, description: str = "",
                           project_id: str | None = None, stateful: bool = True
                           ) -> GroupView:
        """A group with Neutron's rules of a new group: egress anywhere, IPv4 and
        IPv6 (no ingress). An admin may make one for another project."""
        project = check_project_id(project_id or ctx.project_id or "")
        self._check(ctx, "create_security_group", project)
        name, description = _text(name, "name"), _text(description, "description")
        if not stateful:
            raise SecurityGroupStatelessNotSupported()
        await self.network.default_group(project, ctx.user_id)
        if name == "default":
            raise SecurityGroupDefaultAlreadyExists()
        try:
            group = await db_groups.create_group(
                self.db, project, ctx.user_id, name, description,
                self.network.quotas.admit_security_group())
        except exceptions.QuotaExceeded:
            raise OverQuota(overs="security_group") from None
        except db_groups.SecurityGroupExists:
            raise SecurityGroupNameExists(name=name, project_id=project) from None
        LOG.info("Created security group %s (%s) in project %s", group.uuid, name, project)
        return await self.get_group(ctx, group.uuid)

    async def update_group(self, ctx: RequestContext, group_id: str,
                           name: str | None = None, description: str | None = None
                           ) -> GroupView:
        """Rename or redescribe a group; the default group keeps its name."""
        group = await self._group(ctx, group_id)
        self._check(ctx, "update_security_group", group.project_id)
        name = None if name is None else _text(name, "name")
        description = None if description is None else _text(description, "description")
        if group.name == "default" and name is not None and name != "default":
            raise SecurityGroupCannotUpdateDefault()
        try:
            await db_groups.update_group(self.db, group.id, group.name if name is None else name,
                                         group.description if description is None
                                         else description)
        except db_groups.SecurityGroupExists:
            raise SecurityGroupNameExists(name=name, project_id=group.project_id) from None
        return await self.get_group(ctx, group_id)

    async def delete_group(self, ctx: RequestContext, group_id: str) -> None:
        """Delete a group no live instance is in, its rules and the rules naming it
        as remote group; the default group only by an admin (as Neutron)."""
        group = await self._group(ctx, group_id)
        self._check(ctx, "delete_security_group", group.project_id)
        if group.name == "default" and not ctx.is_admin:
            raise SecurityGroupCannotRemoveDefault()
        try:
            await db_groups.delete_group(self.db, group.id)
        except db_groups.SecurityGroupInUse:
            raise SecurityGroupInUse(id=group.uuid) from None
        except db_groups.SecurityGroupNotFound:
            raise SecurityGroupNotFound(id=group_id) from None
        if group.name == "default":
            self.network.default_gone(group.project_id)
        LOG.info("Deleted security group %s (%s)", group.uuid, group.name)
        await self.network.refresh_project_hosts(group.project_id)

    # --- rules ------------------------------------------------------------

    async def list_rules(self, ctx: RequestContext) -> list[RuleView]:
        """The rules of ctx's project's groups (an admin: of every group)."""
        self._check(ctx, "get_security_group_rule", ctx.project_id)
        await self._ensure_default(ctx)
        rows = await db_groups.list_rules(self.db, self._scope(ctx))
        uuids = await self._uuids([rule for rule, _ in rows])
        return [_rule_view(rule, group, uuids) for rule, group in rows]

    async def get_rule(self, ctx: RequestContext, rule_id: str) -> RuleView:
        rule, group = await self._rule(ctx, rule_id)
        self._check(ctx, "get_security_group_rule", group.project_id)
        return _rule_view(rule, group, await self._uuids([rule]))

    async def create_rule(self, ctx: RequestContext, security_group_id: str,
                          direction: Any, ethertype: Any = "IPv4", protocol: Any = None,
                          port_range_min: Any = None, port_range_max: Any = None,
                          remote_ip_prefix: Any = None, remote_group_id: Any = None,
                          description: str = "") -> RuleView:
        """Add a rule (checked and normalised as Neutron does) and have the hosts of
        the group's project apply it at once. The remote group must be one ctx
        sees."""
        group = await self._group(ctx, security_group_id)
        self._check(ctx, "create_security_group_rule", group.project_id)
        description = _text(description, "description")
        spec = check_rule(direction, ethertype, protocol, port_range_min, port_range_max,
                          remote_ip_prefix, remote_group_id)
        remote = None if remote_group_id is None else await self._group(ctx, remote_group_id)
        self._refuse_duplicate(group, spec, remote)
        values = {"direction": spec.direction, "ethertype": spec.ethertype,
                  "protocol": spec.protocol, "from_port": spec.port_range_min,
                  "to_port": spec.port_range_max, "cidr": spec.remote_ip_prefix,
                  "group_id": remote.id if remote else None, "description": description}
        admit = await self.network.quotas.admit_security_group_rule(group.project_id)
        try:
            rule = await db_groups.create_rule(self.db, group.id, values, admit,
                                               group.project_id)
        except exceptions.QuotaExceeded:
            raise OverQuota(overs="security_group_rule") from None
        except db_groups.SecurityGroupRuleExists as exc:
            raise SecurityGroupRuleExists(rule_id=exc.kwargs.get("rule_id")) from None
        LOG.info("Security group %s gained rule %s (%s %s %s)", group.uuid, rule.uuid,
                 spec.direction, spec.ethertype, spec.protocol)
        await self.network.refresh_project_hosts(group.project_id)
        return await self.get_rule(ctx, rule.uuid)

    async def delete_rule(self, ctx: RequestContext, rule_id: str) -> None:
        rule, group = await self._rule(ctx, rule_id)
        self._check(ctx, "delete_security_group_rule", group.project_id)
        try:
            await db_groups.delete_rule(self.db, rule.id)
        except db_groups.SecurityGroupRuleNotFound:
            raise SecurityGroupRuleNotFound(id=rule_id) from None
        LOG.info("Security group %s lost rule %s", group.uuid, rule.uuid)
        await self.network.refresh_project_hosts(group.project_id)

    # --- helpers ----------------------------------------------------------

    @staticmethod
    def _scope(ctx: RequestContext) -> str | None:
        return None if ctx.is_admin else ctx.project_id or ""

    @staticmethod
    def _check(ctx: RequestContext, action: str, project_id: str | None) -> None:
        policy.enforce(ctx, action, project_id)

    async def _ensure_default(self, ctx: RequestContext) -> None:
        """ctx's default group made; and every group and rule has a uuid (every
        read comes here first): the compute face's one way."""
        await self.network.readable(ctx)

    async def _group(self, ctx: RequestContext, group_id: Any) -> SecurityGroup:
        """The group if ctx sees it, named as the compute face takes it (the one
        resolver); SecurityGroupNotFound (404) otherwise."""
        await self._ensure_default(ctx)
        try:
            return await self.network.find_group(group_id, self._scope(ctx))
        except db_groups.SecurityGroupNotFound:
            raise SecurityGroupNotFound(id=group_id) from None

    async def _rule(self, ctx: RequestContext, rule_id: Any
                    ) -> tuple[SecurityGroupRule, SecurityGroup]:
        await self._ensure_default(ctx)
        try:
            rule = await self.network.find_rule(rule_id)
            return rule, await self.network.find_group(rule.parent_group_id, self._scope(ctx))
        except (db_groups.SecurityGroupRuleNotFound, db_groups.SecurityGroupNotFound):
            # another project's rule: as if there were none
            raise SecurityGroupRuleNotFound(id=rule_id) from None

    def _refuse_duplicate(self, group: SecurityGroup, spec: Any,
                          remote: SecurityGroup | None) -> None:
        """409 for a rule the group has already, names and numbers of a protocol
        being the same (tcp is 6), as Neutron compares them."""
        wanted = (spec.direction, spec.ethertype, protocol_number(spec.protocol),
                  spec.port_range_min, spec.port_range_max, spec.remote_ip_prefix,
                  remote.id if remote else None)
        for rule in group.rules:
            have = (rule.direction, rule.ethertype, protocol_number(rule.protocol),
                    rule.from_port, rule.to_port, rule.cidr, rule.group_id)
            if have == wanted:
                raise SecurityGroupRuleExists(rule_id=rule.uuid)

    async def _uuids(self, rules: list[SecurityGroupRule]) -> dict[int, str]:
        ids = [r.parent_group_id for r in rules] + [r.group_id for r in rules if r.group_id]
        return await db_groups.group_uuids(self.db, ids)

    async def _group_views(self, groups: list[SecurityGroup]) -> list[GroupView]:
        uuids = await self._uuids([r for g in groups for r in g.rules])
        return [GroupView(
            id=g.uuid, name=g.name, description=g.description, project_id=g.project_id,
            stateful=True, created_at=g.created_at, updated_at=g.updated_at,
            security_group_rules=tuple(_rule_view(r, g, uuids)
                                       for r in sorted(g.rules, key=lambda r: r.id)))
            for g in groups]


def _rule_view(rule: SecurityGroupRule, group: SecurityGroup, uuids: dict[int, str]
               ) -> RuleView:
    """The rule as Neutron shows it; one made through the compute API's proxy reads
    as Nova told Neutron: protocol in lower case, -1 (any ICMP type or code) None."""
    return RuleView(
        id=rule.uuid, security_group_id=group.uuid, direction=rule.direction,
        ethertype=rule.ethertype, protocol=rule.protocol.lower() if rule.protocol else None,
        port_range_min=_port(rule.from_port), port_range_max=_port(rule.to_port),
        remote_ip_prefix=rule.cidr,
        remote_group_id=uuids.get(rule.group_id) if rule.group_id else None,
        description=rule.description, project_id=group.project_id,
        created_at=rule.created_at, updated_at=rule.updated_at)


def _port(value: int | None) -> int | None:
    return None if value is None or value < 0 else value
