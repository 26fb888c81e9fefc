"""Domains: /v3/domains and /v3/domains/{domain_id}; only the default domain exists."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest
from novalet.api.identity import access, params, views


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/domains, filtered by ?name= and ?enabled=."""
    access.require_token(req)
    found = req.app.identity.list_domains(name=req.query.get("name"),
                                          enabled=params.optional_bool(req.query, "enabled"))
    return views.collection(req, "domains", [views.domain(req, d) for d in found])


async def show(req: ApiRequest) -> dict[str, Any]:
    access.require_token(req)
    return {"domain": views.domain(req, req.app.identity.get_domain(req.path["domain_id"]))}
