"""Domains: /v3/domains and /v3/domains/{domain_id}."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, params, views
from novalet.api.validation import validate

_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"},
    "description": {"type": ["string", "null"], "maxLength": 65535},
    "enabled": {"type": "boolean"},
    "tags": {"type": "array", "maxItems": 0},
    "options": {"type": "object", "maxProperties": 0},
}
CREATE: dict[str, Any] = {"type": "object", "required": ["domain"], "properties": {
    "domain": {"type": "object", "required": ["name"], "additionalProperties": False,
               "properties": _FIELDS}}}
UPDATE: dict[str, Any] = {"type": "object", "required": ["domain"], "properties": {
    "domain": {"type": "object", "additionalProperties": False, "properties": _FIELDS}}}


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/domains, filtered by ?name= and ?enabled=."""
    access.require_token(req)
    found = await req.app.identity.list_domains(
        name=req.query.get("name"), enabled=params.optional_bool(req.query, "enabled"))
    return views.collection(req, "domains", [views.domain(req, d) for d in found])


async def show(req: ApiRequest) -> dict[str, Any]:
    access.require_token(req)
    domain = await req.app.identity.get_domain(req.path["domain_id"])
    return {"domain": views.domain(req, domain)}


async def create(req: ApiRequest) -> Reply:
    access.require_admin(req)
    body = await req.json_object()
    validate(body, CREATE)
    domain = await req.app.identity.create_domain(body["domain"])
    return Reply({"domain": views.domain(req, domain)}, 201)


async def update(req: ApiRequest) -> dict[str, Any]:
    """PATCH: rename, describe, enable or disable (disabling revokes its tokens)."""
    access.require_admin(req)
    body = await req.json_object()
    validate(body, UPDATE)
    domain = await req.app.identity.update_domain(req.path["domain_id"], body["domain"])
    return {"domain": views.domain(req, domain)}


async def delete(req: ApiRequest) -> Reply:
    """DELETE: only a disabled domain (403 otherwise); its contents go with it."""
    access.require_admin(req)
    await req.app.identity.delete_domain(req.path["domain_id"])
    return Reply(None, 204)
