"""Handlers for /os-security-groups (a proxy API: 404 from 2.36), a server's groups
(/servers/{id}/os-security-groups) and the addSecurityGroup and removeSecurityGroup
server actions (both at every version)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from novalet.api.compute.proxy import optional_json, require_proxy_version
from novalet.api.compute.schemas import security_groups as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, query_int
from novalet.db.models import SecurityGroup, SecurityGroupRule
from novalet.policy import enforce

Sources = dict[int, tuple[str, str]]


def rule_view(rule: SecurityGroupRule, sources: Sources) -> dict[str, Any] | None:
    """A rule as Nova shows it: the source group by name, else the CIDR. None when
    the source group is gone (deleted while we read)."""
    body: dict[str, Any] = {"id": rule.id, "parent_group_id": rule.parent_group_id,
                            "ip_protocol": rule.protocol, "from_port": rule.from_port,
                            "to_port": rule.to_port, "group": {}, "ip_range": {}}
    if rule.protocol and rule.from_port is None and rule.to_port is None:
        # a network API rule of a whole protocol, as Nova shows Neutron's
        whole = (1, 65535) if rule.protocol.upper() in ("TCP", "UDP") else (-1, -1)
        body["from_port"], body["to_port"] = whole
    if rule.group_id:
        if rule.group_id not in sources:
            return None
        name, project_id = sources[rule.group_id]
        body["group"] = {"name": name, "tenant_id": project_id}
    else:
        # a network API rule without a prefix is from anywhere
        body["ip_range"] = {"cidr": rule.cidr or "0.0.0.0/0"}
    return body


def proxy_shows(rule: SecurityGroupRule) -> bool:
    """Whether the proxy lists the rule: ingress only (as Nova shows a Neutron
    group), and IPv6 only with a CIDR (the network API's IPv6 rule from a group
    would read as a copy of its IPv4 twin; the proxy never made one)."""
    return rule.direction == "ingress" and (rule.ethertype == "IPv4" or bool(rule.cidr))


def group_view(group: SecurityGroup, sources: Sources) -> dict[str, Any]:
    rules = [rule_view(rule, sources) for rule in sorted(group.rules, key=lambda r: r.id)
             if proxy_shows(rule)]
    return {"id": group.id, "description": group.description, "name": group.name,
            "tenant_id": group.project_id, "rules": [r for r in rules if r is not None]}


async def groups_view(req: ApiRequest, groups: Sequence[SecurityGroup]) -> list[dict[str, Any]]:
    sources = await req.app.network.rule_sources([r for g in groups for r in g.rules])
    views = [group_view(g, sources) for g in groups]
    return sorted(views, key=lambda v: (v["tenant_id"], v["name"]))


def from_body(body: Any, key: str) -> Any:
    """Nova's hand-made checks of these bodies, with its messages."""
    if not body:
        raise ValidationError(reason="The request body can't be empty")
    value = body.get(key) if isinstance(body, dict) else None
    if value is None:
        raise ValidationError(reason=f"Missing parameter {key}")
    if not isinstance(value, dict):
        raise ValidationError(reason=f"Invalid input: {key} must be an object")
    return value


@accepts(query=schemas.INDEX_QUERY)
async def index(req: ApiRequest) -> dict[str, Any]:
    """The project's groups (admins: every project's with ?all_tenants), paged by
    limit and offset."""
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-security-groups:get")
    groups = await req.app.network.list_security_groups(
        req.ctx, all_projects="all_tenants" in req.query)
    offset = query_int(req.query.get("offset"), "offset") or 0
    limit = query_int(req.query.get("limit"), "limit")
    max_limit = int(req.app.conf.get("api", "max_limit"))
    limit = max_limit if limit is None else min(limit, max_limit)
    return {"security_groups": await groups_view(req, groups[offset:offset + limit])}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-security-groups:show")
    group = await req.app.network.get_security_group(req.ctx, req.path["group_id"])
    (view,) = await groups_view(req, [group])
    return {"security_group": view}


@accepts(body=schemas.GROUP)
async def create(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-security-groups:create")
    params = from_body(await optional_json(req), "security_group")
    group = await req.app.network.create_security_group(req.ctx, params.get("name"),
                                                        params.get("description"))
    (view,) = await groups_view(req, [group])
    return {"security_group": view}


@accepts(body=schemas.GROUP)
async def update(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-security-groups:update")
    await req.app.network.get_security_group(req.ctx, req.path["group_id"])
    params = from_body(await optional_json(req), "security_group")
    group = await req.app.network.update_security_group(
        req.ctx, req.path["group_id"], params.get("name"), params.get("description"))
    (view,) = await groups_view(req, [group])
    return {"security_group": view}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-security-groups:delete")
    await req.app.network.delete_security_group(req.ctx, req.path["group_id"])
    return Reply(None, 202)


@accepts()
async def server_index(req: ApiRequest) -> dict[str, Any]:
    """GET /servers/{id}/os-security-groups: the groups a server is in, with the
    network API's ids (uuids) as Nova with Neutron answers at every version: clients
    (Ansible's server module) look each one up at /v2.0/security-groups/{id}. The
    proxy (/os-security-groups, up to 2.35) keeps the nova-network face's numbers."""
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-security-groups:list", instance.project_id)
    groups = await req.app.network.instance_security_groups(req.ctx, instance.uuid)
    uuids = {g.id: g.uuid for g in groups}
    return {"security_groups": [{**view, "id": uuids[view["id"]]}
                                for view in await groups_view(req, groups)]}


def _group_name(value: Any) -> str:
    if not isinstance(value, dict):
        raise ValidationError(reason="Missing parameter dict")
    if "name" not in value:
        raise ValidationError(reason="Security group not specified")
    name = value["name"]
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(reason="Security group name cannot be empty")
    return name


async def add_to_server(req: ApiRequest, value: Any) -> Reply:
    """Server action addSecurityGroup {"name"}."""
    name = _group_name(value)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-security-groups:add", instance.project_id)
    await req.app.network.add_security_group(req.ctx, instance, name)
    return Reply(None, 202)


async def remove_from_server(req: ApiRequest, value: Any) -> Reply:
    """Server action removeSecurityGroup {"name"}."""
    name = _group_name(value)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-security-groups:remove", instance.project_id)
    await req.app.network.remove_security_group(req.ctx, instance, name)
    return Reply(None, 202)
