"""Handlers for /os-security-group-rules (a proxy API: 404 from 2.36)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.proxy import optional_json, require_proxy_version
from novalet.api.compute.security_groups import from_body, rule_view
from novalet.api.compute.schemas import security_groups as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import accepts
from novalet.policy import enforce


@accepts(body=schemas.RULE)
async def create(req: ApiRequest) -> dict[str, Any]:
    """An ingress rule: parent_group_id, ip_protocol, from_port, to_port and a
    source, cidr or group_id (validation and messages as Nova's)."""
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-security-groups:rule:create")
    params = from_body(await optional_json(req), "security_group_rule")
    rule = await req.app.network.create_security_group_rule(
        req.ctx, params.get("parent_group_id"), ip_protocol=params.get("ip_protocol"),
        from_port=params.get("from_port"), to_port=params.get("to_port"),
        cidr=params.get("cidr"), group_id=params.get("group_id"))
    sources = await req.app.network.rule_sources([rule])
    return {"security_group_rule": rule_view(rule, sources)}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-security-groups:rule:delete")
    await req.app.network.delete_security_group_rule(req.ctx, req.path["rule_id"])
    return Reply(None, 202)
