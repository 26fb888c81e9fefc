"""Handlers for /v2.0/security-groups and /v2.0/security-group-rules: Neutron's
shapes over network/neutron_security_groups.py, which checks rule values and
enforces scope and policy (the same rows as the compute API's os-security-groups)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.network import listing
from novalet.api.network import bulk, tags
from novalet.api.network.attributes import Attr, BadBody, boolean, optional_string, read_body
from novalet.api.network.listing import Field, as_bool, as_int
from novalet.common.timeutils import isotime
from novalet.network.neutron_security_groups import (GroupView, RuleView,
                                                     SecurityGroupNotFound,
                                                     SecurityGroupRuleNotFound,
                                                     SecurityGroupStatelessNotSupported)


def _as_given(name: str, value: Any) -> Any:
    """Values the domain checks itself, with Neutron's errors (rule fields)."""
    return value


_READ_ONLY = Attr(_as_given, post=False, put=False)
_TEXT = optional_string(255)
GROUP_ATTRIBUTES: dict[str, Attr] = {
    "id": _READ_ONLY, "security_group_rules": _READ_ONLY,
    "created_at": _READ_ONLY, "updated_at": _READ_ONLY,
    "name": Attr(_TEXT), "description": Attr(_TEXT),
    "tenant_id": Attr(_TEXT, put=False), "project_id": Attr(_TEXT, put=False),
    "stateful": Attr(boolean),
}
RULE_ATTRIBUTES: dict[str, Attr] = {
    "id": _READ_ONLY, "created_at": _READ_ONLY, "updated_at": _READ_ONLY,
    "security_group_id": Attr(_as_given, put=False), "direction": Attr(_as_given, put=False),
    "ethertype": Attr(_as_given, put=False), "protocol": Attr(_as_given, put=False),
    "port_range_min": Attr(_as_given, put=False),
    "port_range_max": Attr(_as_given, put=False),
    "remote_ip_prefix": Attr(_as_given, put=False),
    "remote_group_id": Attr(_as_given, put=False),
    "description": Attr(_TEXT, put=False),
    "tenant_id": Attr(_TEXT, put=False), "project_id": Attr(_TEXT, put=False),
}

_COMMON = {"id": Field(), "tenant_id": Field(), "project_id": Field(),
           "description": Field(), "created_at": Field(), "updated_at": Field()}
KIND = "security-groups"  # its tags' kind (network/tag_kinds.py)
GROUP_FIELDS: dict[str, Field] = {
    **_COMMON, "name": Field(), "stateful": Field(as_bool),
    "security_group_rules": Field(sortable=False), "tags": Field(sortable=False)}
RULE_FIELDS: dict[str, Field] = {
    **_COMMON, "security_group_id": Field(), "direction": Field(), "ethertype": Field(),
    "protocol": Field(), "port_range_min": Field(as_int), "port_range_max": Field(as_int),
    "remote_ip_prefix": Field(), "remote_group_id": Field()}


def rule_view(rule: RuleView) -> dict[str, Any]:
    return {"id": rule.id, "security_group_id": rule.security_group_id,
            "direction": rule.direction, "ethertype": rule.ethertype,
            "protocol": rule.protocol, "port_range_min": rule.port_range_min,
            "port_range_max": rule.port_range_max, "remote_ip_prefix": rule.remote_ip_prefix,
            "remote_group_id": rule.remote_group_id, "description": rule.description,
            "tenant_id": rule.project_id, "project_id": rule.project_id,
            "created_at": isotime(rule.created_at),
            "updated_at": isotime(rule.updated_at or rule.created_at)}


def group_view(group: GroupView) -> dict[str, Any]:
    """Neutron's group with its rules; `stateful` is always true here (stateless
    groups are refused, so the stateful-security-group extension is not listed)."""
    return {"id": group.id, "name": group.name, "description": group.description,
            "tenant_id": group.project_id, "project_id": group.project_id,
            "stateful": group.stateful,
            "security_group_rules": [rule_view(r) for r in group.security_group_rules],
            "created_at": isotime(group.created_at),
            "updated_at": isotime(group.updated_at or group.created_at)}


def _fields(req: ApiRequest) -> list[str]:
    return [f for f in req.query.getlist("fields") if f][:listing.MAX_VALUES]


def _project(attrs: dict[str, Any]) -> str | None:
    """project_id, or tenant_id its old name; both given must agree (400)."""
    project, tenant = attrs.get("project_id"), attrs.get("tenant_id")
    if project is not None and tenant is not None and project != tenant:
        raise BadBody(reason="project_id and tenant_id do not match")
    return project if project is not None else tenant


def _url(req: ApiRequest) -> str:
    return str(req.app.conf.public_url + req.raw.url.path)


# --- groups -----------------------------------------------------------------------

async def index_groups(req: ApiRequest) -> dict[str, Any]:
    query = listing.parse(req.query, GROUP_FIELDS)
    groups = await req.app.neutron_security_groups.list_groups(req.ctx)
    views = await tags.with_tags(req, KIND, [group_view(g) for g in groups])
    return listing.apply(views, query, "security_groups", _url(req),
                         req.query, lambda marker: SecurityGroupNotFound(id=marker))


async def show_group(req: ApiRequest) -> dict[str, Any]:
    group = await req.app.neutron_security_groups.get_group(req.ctx, req.path["group_id"])
    shown = await tags.tagged(req, KIND, group_view(group))
    return {"security_group": listing.select_fields(shown, _fields(req))}


async def create_group(req: ApiRequest) -> Reply:
    attrs = read_body(await req.json(), "security_group", GROUP_ATTRIBUTES, "POST")
    project = _project(attrs)
    if project not in (None, req.ctx.project_id) and not req.ctx.is_admin:
        raise BadBody(reason="Specifying 'project_id' or 'tenant_id' other than the "
                      "authenticated project in request requires admin privileges")
    group = await req.app.neutron_security_groups.create_group(
        req.ctx, attrs.get("name") or "", attrs.get("description") or "", project,
        attrs.get("stateful", True))
    return Reply({"security_group": await tags.tagged(req, KIND, group_view(group))}, 201)


async def update_group(req: ApiRequest) -> dict[str, Any]:
    attrs = read_body(await req.json(), "security_group", GROUP_ATTRIBUTES, "PUT")
    if attrs.get("stateful", True) is not True:
        raise SecurityGroupStatelessNotSupported()
    group = await req.app.neutron_security_groups.update_group(
        req.ctx, req.path["group_id"], attrs.get("name"), attrs.get("description"))
    return {"security_group": await tags.tagged(req, KIND, group_view(group))}


async def delete_group(req: ApiRequest) -> Reply:
    await req.app.neutron_security_groups.delete_group(req.ctx, req.path["group_id"])
    return Reply(None, 204)


# --- rules ------------------------------------------------------------------------

async def index_rules(req: ApiRequest) -> dict[str, Any]:
    query = listing.parse(req.query, RULE_FIELDS)
    rules = await req.app.neutron_security_groups.list_rules(req.ctx)
    return listing.apply([rule_view(r) for r in rules], query, "security_group_rules",
                         _url(req), req.query,
                         lambda marker: SecurityGroupRuleNotFound(id=marker))


async def show_rule(req: ApiRequest) -> dict[str, Any]:
    rule = await req.app.neutron_security_groups.get_rule(req.ctx, req.path["rule_id"])
    return {"security_group_rule": listing.select_fields(rule_view(rule), _fields(req))}


def _rule_attrs(item: Any) -> dict[str, Any]:
    attrs = read_body({"security_group_rule": item}, "security_group_rule", RULE_ATTRIBUTES,
                      "POST")
    for name in ("security_group_id", "direction"):
        if name not in attrs:
            raise BadBody(reason=f"Failed to parse request. Required attribute '{name}' "
                          "not specified")
    _project(attrs)
    return attrs


async def _create_rule(req: ApiRequest, attrs: dict[str, Any]) -> RuleView:
    """The rule in its group's project (a project_id given must be that one: the
    domain puts a rule where its group is)."""
    groups = req.app.neutron_security_groups
    project = _project(attrs)
    if project is not None:
        group = await groups.get_group(req.ctx, attrs["security_group_id"])
        if project != group.project_id:
            raise BadBody(reason=f"project_id {project} is not the project of security "
                          f"group {group.id} ({group.project_id}): leave it out")
    rule: RuleView = await groups.create_rule(
        req.ctx, attrs["security_group_id"], attrs["direction"],
        attrs.get("ethertype", "IPv4"), attrs.get("protocol"), attrs.get("port_range_min"),
        attrs.get("port_range_max"), attrs.get("remote_ip_prefix"),
        attrs.get("remote_group_id"), attrs.get("description") or "")
    return rule


async def create_rule(req: ApiRequest) -> Reply:
    """One rule, or Neutron's bulk form {"security_group_rules": [...]}: all or none."""
    body = await req.json()
    if (isinstance(body, dict) and "security_group_rules" in body
            and "security_group_rule" not in body):
        return Reply({"security_group_rules": await _create_bulk(
            req, body["security_group_rules"])}, 201)
    if not isinstance(body, dict) or not isinstance(body.get("security_group_rule"), dict):
        raise BadBody(reason="Unable to find 'security_group_rule' in request body; send "
                      '{"security_group_rule": {...}}')
    rule = await _create_rule(req, _rule_attrs(body["security_group_rule"]))
    return Reply({"security_group_rule": rule_view(rule)}, 201)


async def _create_bulk(req: ApiRequest, items: Any) -> list[dict[str, Any]]:
    checked = [_rule_attrs(item) for item in bulk.items(items, "security_group_rules")]

    async def undo(rule: RuleView) -> None:
        await req.app.neutron_security_groups.delete_rule(req.ctx, rule.id)

    made = await bulk.all_or_none(checked, lambda a: _create_rule(req, a), undo)
    return [rule_view(rule) for rule in made]


async def delete_rule(req: ApiRequest) -> Reply:
    await req.app.neutron_security_groups.delete_rule(req.ctx, req.path["rule_id"])
    return Reply(None, 204)
