"""Security groups: per-project groups of ingress rules and which instances are in
them, the nova-network way (a `default` group per project, created on first use,
letting its members reach each other)."""

from __future__ import annotations

import ipaddress
import logging
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.compute.quotas import QuotaEngine
from novalet.db import network as db
from novalet.db import security_groups as db_groups
from novalet.db.engine import Database
from novalet.db.limits import BIGINT_MAX
from novalet.db.models import SecurityGroup, SecurityGroupRule

LOG = logging.getLogger(__name__)

RO_SECURITY_GROUPS = ("default",)
_PROTOCOLS = ("TCP", "UDP", "ICMP")


class InvalidCidr(exceptions.Invalid):
    msg_fmt = "%(cidr)s is not a valid IP network."


class InvalidSecurityGroupProperty(exceptions.Invalid):
    msg_fmt = "%(reason)s"


class SecurityGroupReadOnly(exceptions.Invalid):
    msg_fmt = "Unable to %(action)s system group '%(name)s'"


class InvalidSecurityGroupId(exceptions.Invalid):
    msg_fmt = "Security group id should be uuid"


class InvalidRule(exceptions.Invalid):
    msg_fmt = "%(reason)s"


class InvalidInput(exceptions.Invalid):
    msg_fmt = "Invalid input received: %(reason)s"


class InvalidIpProtocol(exceptions.Invalid):
    msg_fmt = "Invalid IP protocol %(protocol)s."


class InvalidPortRange(exceptions.Invalid):
    msg_fmt = "Invalid port range %(from_port)s:%(to_port)s. %(msg)s"


class SecurityGroupNotFoundForBoot(exceptions.Invalid):
    msg_fmt = "Security group %(name)s not found for project %(project_id)s."


def to_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None
    """An integer from a request value, or None when it isn't one."""


def to_id(value: Any) -> int | None:
    """A database id from a request value: None when it isn't a positive integer a
    column can hold (such ids can't exist; SQLite would fail on them)."""
    number = to_int(value)
    return number if number is not None and 0 < number <= BIGINT_MAX else None


def parse_security_group_id(value: Any) -> str | int | None:
    """What a request body names a security group by: its uuid, the id both the
    compute and the network API show (made canonical); or, from a script of before
    the compute API showed uuids, the integer id it showed then (None: a number no
    row can have). Anything else is the 400 of Nova with Neutron."""
    plain = isinstance(value, (str, int)) and not isinstance(value, bool)
    text = str(value).strip() if plain else ""
    if text.isascii() and text.isdecimal():
        return to_id(text)
    try:
        return str(uuidlib.UUID(text))
    except ValueError:
        raise InvalidSecurityGroupId() from None


def security_group_ref(value: Any) -> str | int | None:
    """The same for an id in a path, where anything else is None (a 404): Nova
    with Neutron answers 400, but the openstack CLI's compute fallback looks a
    group up by name through GET /os-security-groups/{name} and lists only
    after a 404."""
    try:
        return parse_security_group_id(value)
    except InvalidSecurityGroupId:
        return None


class SecurityGroupsMixin:
    """The security-group half of NetworkAPI (which provides db, quotas, the
    default-group memo and _refresh)."""

    db: Database
    quotas: QuotaEngine
    _have_default: set[str]
    _refresh: Callable[[set[str]], Awaitable[None]]

    async def _default_group(self, project_id: str, user_id: str | None) -> SecurityGroup:
        group = await db_groups.ensure_default_group(self.db, project_id, user_id)
        self._have_default.add(project_id)
        return group

    async def default_group(self, project_id: str, user_id: str | None) -> SecurityGroup:
        """The project's default group (made on first use, with Neutron's rules)."""
        return await self._default_group(project_id, user_id)

    def default_gone(self, project_id: str) -> None:
        """The project's default group was deleted (an admin may, as Neutron): the
        next read makes it again."""
        self._have_default.discard(project_id)

    async def refresh_project_hosts(self, project_id: str) -> None:
        """Have the hosts with the project's instances apply their firewall now."""
        await self._refresh(await db.project_hosts(self.db, project_id))

    async def _ensure_default(self, ctx: RequestContext) -> None:
        if ctx.project_id and ctx.project_id not in self._have_default:
            await self._default_group(ctx.project_id, ctx.user_id)

    async def readable(self, ctx: RequestContext) -> None:
        """ctx's default group made, and every group and rule with the uuid both
        faces show (a process of the release before 0016 wrote none); every read of
        either face comes here first."""
        await self._ensure_default(ctx)
        await db_groups.fill_missing_uuids(self.db)

    async def find_group(self, group_id: Any, project_id: str | None) -> SecurityGroup:
        """The one resolver of a group id on both faces: its uuid in any spelling
        (made canonical) or its integer id of before, owned by project_id (None:
        any project); SecurityGroupNotFound otherwise."""
        ref = security_group_ref(group_id)
        if ref is None:
            raise db_groups.SecurityGroupNotFound(security_group_id=group_id)
        return await db_groups.get_group(self.db, ref, project_id)

    async def find_rule(self, rule_id: Any) -> SecurityGroupRule:
        """The same for a rule (its group's owner unchecked: the caller's job)."""
        ref = security_group_ref(rule_id)
        if ref is None:
            raise db_groups.SecurityGroupRuleNotFound(rule_id=rule_id)
        return await db_groups.get_rule(self.db, ref)

    async def list_security_groups(self, ctx: RequestContext, all_projects: bool = False
                                   ) -> list[SecurityGroup]:
        """The project's groups (its default group is created on first sight);
        admins may ask for every project's."""
        await self.readable(ctx)
        project = None if (all_projects and ctx.is_admin) else ctx.project_id or ""
        return await db_groups.list_groups(self.db, project)

    async def get_security_group(self, ctx: RequestContext, group_id: str | int
                                 ) -> SecurityGroup:
        """The group named by its uuid (or its integer id of before) if ctx's project
        owns it (admins: any); 404 otherwise."""
        await self.readable(ctx)
        return await self.find_group(group_id, None if ctx.is_admin else ctx.project_id or "")

    async def create_security_group(self, ctx: RequestContext, name: Any, description: Any
                                    ) -> SecurityGroup:
        name, description = _group_property(name, "name"), _group_property(
            description, "description")
        await self._ensure_default(ctx)
        group = await db_groups.create_group(self.db, ctx.project_id or "", ctx.user_id, name,
                                             description, self.quotas.admit_security_group())
        LOG.info("Created security group %s", name)
        return group

    async def update_security_group(self, ctx: RequestContext, group_id: str | int,
                                    name: Any, description: Any) -> SecurityGroup:
        group = await self.get_security_group(ctx, group_id)
        name, description = _group_property(name, "name"), _group_property(
            description, "description")
        if group.name in RO_SECURITY_GROUPS:
            raise SecurityGroupReadOnly(action="update", name=group.name)
        return await db_groups.update_group(self.db, group.id, name, description)

    async def delete_security_group(self, ctx: RequestContext, group_id: str | int) -> None:
        group = await self.get_security_group(ctx, group_id)
        if group.name in RO_SECURITY_GROUPS:
            raise SecurityGroupReadOnly(action="delete", name=group.name)
        await db_groups.delete_group(self.db, group.id)
        LOG.info("Deleted security group %s", group.name)
        await self._refresh(await db.project_hosts(self.db, group.project_id))

    async def rule_sources(self, rules: Sequence[SecurityGroupRule]
                           ) -> dict[int, tuple[str, str, str]]:
        """Group id -> (uuid, name, project id) of the rules' groups and of the source
        groups they name: how the compute API shows a rule."""
        ids = [r.parent_group_id for r in rules] + [r.group_id for r in rules if r.group_id]
        return await db_groups.group_names(self.db, ids)

    async def create_security_group_rule(self, ctx: RequestContext, parent_group_id: Any,
                                         ip_protocol: Any = None, from_port: Any = None,
                                         to_port: Any = None, cidr: Any = None,
                                         group_id: Any = None) -> SecurityGroupRule:
        """An ingress rule, validated as Nova validates it: from a CIDR (default
        0.0.0.0/0; protocol and ports required) or from a source group (no protocol:
        any traffic; tcp/udp without ports: all ports; icmp: any type and code)."""
        parent = await self._group_from_body(ctx, parent_group_id)
        if group_id is not None:
            source = await self._group_from_body(ctx, group_id)
            values = _ingress_rule(ip_protocol, from_port, to_port, group_id=source.id)
        else:
            values = _ingress_rule(ip_protocol, from_port, to_port, cidr=_parse_cidr(cidr))
        if values is None:
            raise InvalidRule(reason="Not enough parameters to build a valid rule.")
        if values.get("cidr"):
            network, _, prefix = values["cidr"].partition("/")
            if network not in ("0.0.0.0", "::") and prefix == "0":
                raise InvalidRule(reason=f"Bad prefix for network in cidr {values['cidr']}")
        if ":" in (values.get("cidr") or ""):
            values["ethertype"] = "IPv6"  # as Nova tells Neutron
        admit = await self.quotas.admit_security_group_rule(parent.project_id)
        try:
            rule = await db_groups.create_rule(self.db, parent.id, values, admit,
                                               parent.project_id)
        except db_groups.SecurityGroupRuleExists:
            # named by the id the caller knows it by
            raise db_groups.SecurityGroupRuleExists(group_id=parent.uuid) from None
        LOG.info("Security group %s added %s ingress (%s:%s)", parent.name, rule.protocol,
                 rule.from_port, rule.to_port)
        await self._refresh(await db.project_hosts(self.db, parent.project_id))
        return rule

    async def _group_from_body(self, ctx: RequestContext, value: Any) -> SecurityGroup:
        parse_security_group_id(value)  # 400 unless a uuid or a number
        return await self.get_security_group(ctx, value)

    async def delete_security_group_rule(self, ctx: RequestContext, rule_id: str | int) -> None:
        """Delete the rule named by its uuid (or its integer id of before) if ctx's
        project owns its group (admins: any); 404 otherwise."""
        await self.readable(ctx)
        rule = await self.find_rule(rule_id)
        try:
            parent = await self.get_security_group(ctx, rule.parent_group_id)
        except db_groups.SecurityGroupNotFound:
            # another project's rule: as if there were none (its group's id unsaid)
            raise db_groups.SecurityGroupRuleNotFound(rule_id=rule_id) from None
        await db_groups.delete_rule(self.db, rule.id)
        LOG.info("Security group %s removed %s ingress (%s:%s)", parent.name, rule.protocol,
                 rule.from_port, rule.to_port)
        await self._refresh(await db.project_hosts(self.db, parent.project_id))

    async def instance_security_groups(self, ctx: RequestContext, instance_uuid: str
                                       ) -> list[SecurityGroup]:
        await self.readable(ctx)
        return (await db_groups.instance_groups(self.db, [instance_uuid])).get(instance_uuid, [])

    async def _named_group(self, project_id: str, name: str) -> SecurityGroup:
        """The project's group by name, else by uuid: Nova with Neutron takes either
        where a group is named (the openstack CLI sends uuids when the network API
        is in the catalog)."""
        try:
            return await db_groups.get_group_by_name(self.db, project_id, name)
        except db_groups.SecurityGroupNotFoundForProject as by_name:
            if not isinstance(security_group_ref(name), str):
                raise
            try:
                return await self.find_group(name, project_id)
            except db_groups.SecurityGroupNotFound:
                raise by_name from None

    async def add_security_group(self, ctx: RequestContext, instance: Any, name: str) -> None:
        """Make the instance a member of its project's group `name` (or uuid)."""
        group = await self._named_group(instance.project_id, name)
        await db_groups.add_instance_group(self.db, instance.uuid, group.id)
        await self._refresh(await db.project_hosts(self.db, group.project_id))

    async def remove_security_group(self, ctx: RequestContext, instance: Any, name: str) -> None:
        group = await self._named_group(instance.project_id, name)
        await db_groups.remove_instance_group(self.db, instance.uuid, group.id)
        await self._refresh(await db.project_hosts(self.db, group.project_id))

    async def check_security_groups(self, project_id: str, user_id: str | None,
                                    names: Sequence[str]) -> list[int]:
        """The ids of the groups a boot request names, by name or uuid (400 for an
        unknown one); `default` always exists."""
        default = await self._default_group(project_id, user_id)
        wanted = [n for n in dict.fromkeys(names) if n != "default"]
        found = await db_groups.groups_by_names(self.db, project_id, wanted)
        for name in wanted:
            if name not in found:  # no such name (looked up above): a uuid, maybe
                try:
                    if not isinstance(security_group_ref(name), str):
                        raise db_groups.SecurityGroupNotFound(security_group_id=name)
                    found[name] = await self.find_group(name, project_id)
                except db_groups.SecurityGroupNotFound:
                    raise SecurityGroupNotFoundForBoot(name=name,
                                                       project_id=project_id) from None
        # a group named and given by its id too is one membership
        return list(dict.fromkeys(default.id if n == "default" else found[n].id
                                  for n in dict.fromkeys(names)))

    async def associate_security_groups(self, instance_uuids: Sequence[str], project_id: str,
                                        user_id: str | None,
                                        names: Sequence[str] | None = None) -> None:
        """Make new instances members of the named groups (none named: default);
        call at create so that views show them before the build allocates."""
        ids = await self.check_security_groups(project_id, user_id, names or ["default"])
        await db_groups.add_instance_groups(self.db, instance_uuids, ids)


def _group_property(value: Any, name: str) -> str:
    """The value as given: Nova checks it without its surrounding blanks but stores
    it whole (Tempest's compute tests create " name " and read it back)."""
    if not isinstance(value, str):
        raise InvalidSecurityGroupProperty(reason=f"Security group {name} is not a string "
                                           "or unicode")
    text = value.strip()
    if len(text) < 1:
        raise InvalidSecurityGroupProperty(
            reason=f"{name} has a minimum character requirement of 1.")
    if len(value) > 255:  # what is stored must fit its column
        raise InvalidSecurityGroupProperty(reason=f"{name} has more than 255 characters.")
    return value


def _parse_cidr(cidr: Any) -> str:
    if not cidr:
        return "0.0.0.0/0"
    text = str(cidr)
    # kept as given: it must fit the column (String(43)); a scoped IPv6 address
    # (fe80::1%eth0) names a host's link, meaningless in a rule
    if len(text) > 43 or "%" in text:
        raise InvalidCidr(cidr=text[:60])
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidCidr(cidr=text) from None
    if "/" not in text:
        text = str(network)
    return text


def _ingress_rule(ip_protocol: Any, from_port: Any, to_port: Any, *,
                  group_id: int | None = None, cidr: str | None = None
                  ) -> dict[str, Any] | None:
    """The values of a new rule, or None when a CIDR rule lacks protocol or ports."""
    values: dict[str, Any] = {}
    upper = str(ip_protocol).upper() if ip_protocol else ""
    if group_id is not None:
        values["group_id"] = group_id
        # A source group without ports opens the protocol's whole range.
        if from_port is None and to_port is None:
            if upper == "ICMP":
                from_port = to_port = -1
            elif upper in ("TCP", "UDP"):
                from_port, to_port = 1, 65535
    elif cidr:
        values["cidr"] = cidr
    if ip_protocol and from_port is not None and to_port is not None:
        first, last = to_int(from_port), to_int(to_port)
        if first is None or last is None:
            raise InvalidInput(reason="Type and Code must be integers for ICMP protocol type"
                               if upper == "ICMP" else "To and From ports must be integers")
        if upper not in _PROTOCOLS:
            raise InvalidIpProtocol(protocol=ip_protocol)
        if upper in ("TCP", "UDP") and first > last:
            raise InvalidPortRange(from_port=first, to_port=last,
                                   msg="Former value cannot be greater than the later")
        if upper in ("TCP", "UDP") and (first < 1 or last > 65535):
            raise InvalidPortRange(from_port=first, to_port=last,
                                   msg=f"Valid {upper} ports should be between 1-65535")
        if upper == "ICMP" and not (-1 <= first <= 255 and -1 <= last <= 255):
            raise InvalidPortRange(from_port=first, to_port=last,
                                   msg="For ICMP, the type:code must be valid")
        values.update(protocol=str(ip_protocol), from_port=first, to_port=last)
    elif cidr:
        return None
    return values
