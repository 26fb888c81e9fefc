"""Handlers for /os-quota-sets: a project's (or user's) limits, defaults, usage."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.compute.schemas import quotas as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import accepts, to_bool, validate
from novalet.policy import enforce


class InvalidProject(exceptions.Invalid):
    msg_fmt = "Project ID %(project_id)s is not a valid project."


async def _verify_project(req: ApiRequest, project_id: str) -> None:
    """A 400 for a project identity doesn't know (checked after policy, as Nova does)."""
    try:
        await req.app.identity.get_project(project_id)
    except exceptions.NotFound:
        raise InvalidProject(project_id=project_id) from None


def _shown(req: ApiRequest, values: dict[str, Any]) -> dict[str, Any]:
    """Resource values under their API names, those the microversion shows."""
    named = {schemas.API_NAMES.get(r, r): v for r, v in values.items()}
    return {name: named[name] for name in schemas.quota_set_fields(req.at_least)}


def _user(req: ApiRequest) -> str | None:
    """The ?user_id= (@accepts checked the query before the handler ran)."""
    return req.query.get("user_id") or None


@accepts(query=schemas.query)
async def show(req: ApiRequest) -> dict[str, Any]:
    project_id = req.path["tenant_id"]
    user_id = _user(req)
    enforce(req.ctx, "os_compute_api:os-quota-sets:show", project_id)
    await _verify_project(req, project_id)
    limits = await req.app.quotas.limits(project_id, user_id)
    return {"quota_set": {"id": project_id, **_shown(req, limits)}}


@accepts(query=schemas.query)
async def detail(req: ApiRequest) -> dict[str, Any]:
    project_id = req.path["tenant_id"]
    user_id = _user(req)
    enforce(req.ctx, "os_compute_api:os-quota-sets:detail", project_id)
    await _verify_project(req, project_id)
    detail = await req.app.quotas.detail(project_id, user_id)
    return {"quota_set": {"id": project_id, **_shown(req, detail)}}


@accepts()
async def defaults(req: ApiRequest) -> dict[str, Any]:
    project_id = req.path["tenant_id"]
    enforce(req.ctx, "os_compute_api:os-quota-sets:defaults")
    return {"quota_set": {"id": project_id,
                          **_shown(req, await req.app.quotas.defaults())}}


@accepts(body=schemas.update_set, query=schemas.query)
async def update(req: ApiRequest) -> dict[str, Any]:
    """Set limits; a limit below what is in use is a 400 unless `force`."""
    project_id = req.path["tenant_id"]
    user_id = _user(req)
    enforce(req.ctx, "os_compute_api:os-quota-sets:update", project_id)
    body = await req.json_object()
    validate(body, schemas.update_set(req.at_least))
    await _verify_project(req, project_id)
    values = dict(body["quota_set"])
    force = to_bool(values.pop("force", False))
    limits = {schemas.RESOURCE_NAMES.get(k, k): int(v) for k, v in values.items()}
    await req.app.quotas.update(project_id, user_id, limits, force=force)
    return {"quota_set": _shown(req, await req.app.quotas.limits(project_id, user_id))}


@accepts(query=schemas.query)
async def delete(req: ApiRequest) -> Reply:
    """Forget the project's (or user's) own limits: the defaults apply again."""
    project_id = req.path["tenant_id"]
    user_id = _user(req)
    enforce(req.ctx, "os_compute_api:os-quota-sets:delete", project_id)
    await req.app.quotas.delete(project_id, user_id)
    return Reply(None, 202)
