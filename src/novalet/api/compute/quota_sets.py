"""Handlers for /os-quota-sets: a project's (or user's) limits, defaults, usage."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import quotas as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import to_bool, validate
from novalet.policy import enforce


def _shown(req: ApiRequest, values: dict[str, Any]) -> dict[str, Any]:
    """Resource values under their API names, those the microversion shows."""
    named = {schemas.API_NAMES.get(r, r): v for r, v in values.items()}
    return {name: named[name] for name in schemas.quota_set_fields(req.at_least)}


def _user(req: ApiRequest) -> str | None:
    params = dict(req.query)
    validate(params, schemas.query(req.at_least), "query parameters")
    return params.get("user_id") or None


async def show(req: ApiRequest) -> dict[str, Any]:
    project_id = req.path["tenant_id"]
    user_id = _user(req)
    enforce(req.ctx, "os_compute_api:os-quota-sets:show", project_id)
    limits = await req.app.quotas.limits(project_id, user_id)
    return {"quota_set": {"id": project_id, **_shown(req, limits)}}


async def detail(req: ApiRequest) -> dict[str, Any]:
    project_id = req.path["tenant_id"]
    user_id = _user(req)
    enforce(req.ctx, "os_compute_api:os-quota-sets:detail", project_id)
    detail = await req.app.quotas.detail(project_id, user_id)
    return {"quota_set": {"id": project_id, **_shown(req, detail)}}


async def defaults(req: ApiRequest) -> dict[str, Any]:
    project_id = req.path["tenant_id"]
    enforce(req.ctx, "os_compute_api:os-quota-sets:defaults")
    return {"quota_set": {"id": project_id,
                          **_shown(req, await req.app.quotas.defaults())}}


async def update(req: ApiRequest) -> dict[str, Any]:
    """Set limits; a limit below what is in use is a 400 unless `force`."""
    project_id = req.path["tenant_id"]
    user_id = _user(req)
    enforce(req.ctx, "os_compute_api:os-quota-sets:update", project_id)
    body = await req.json_object()
    validate(body, schemas.update_set(req.at_least))
    values = dict(body["quota_set"])
    force = to_bool(values.pop("force", False))
    limits = {schemas.RESOURCE_NAMES.get(k, k): int(v) for k, v in values.items()}
    await req.app.quotas.update(project_id, user_id, limits, force=force)
    return {"quota_set": _shown(req, await req.app.quotas.limits(project_id, user_id))}


async def delete(req: ApiRequest) -> Reply:
    """Forget the project's (or user's) own limits: the defaults apply again."""
    project_id = req.path["tenant_id"]
    user_id = _user(req)
    enforce(req.ctx, "os_compute_api:os-quota-sets:delete", project_id)
    await req.app.quotas.delete(project_id, user_id)
    return Reply(None, 202)
