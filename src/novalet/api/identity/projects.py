"""Projects: /v3/projects and /v3/projects/{project_id}."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, params, views
from novalet.api.validation import validate

NAME = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"}
_FIELDS: dict[str, Any] = {
    "name": NAME,
    "description": {"type": ["string", "null"], "maxLength": 65535},
    "enabled": {"type": "boolean"},
    "tags": {"type": "array", "maxItems": 0},
    "options": {"type": "object", "maxProperties": 0},
}
CREATE: dict[str, Any] = {"type": "object", "required": ["project"], "properties": {
    "project": {"type": "object", "required": ["name"], "additionalProperties": False,
                "properties": {**_FIELDS,
                               "domain_id": {"type": ["string", "null"]},
                               "parent_id": {"type": ["string", "null"]},
                               "is_domain": {"type": "boolean"}}}}}
UPDATE: dict[str, Any] = {"type": "object", "required": ["project"], "properties": {
    "project": {"type": "object", "additionalProperties": False, "properties": _FIELDS}}}


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/projects, filtered by ?name=, ?domain_id=, ?enabled=."""
    access.require_admin(req)
    found = await req.app.identity.list_projects(
        name=req.query.get("name"), domain_id=req.query.get("domain_id"),
        enabled=params.optional_bool(req.query, "enabled"))
    return views.collection(req, "projects", [views.project(req, p) for p in found])


async def create(req: ApiRequest) -> Reply:
    access.require_admin(req)
    body = await req.json_object()
    validate(body, CREATE)
    project = await req.app.identity.create_project(body["project"])
    return Reply({"project": views.project(req, project)}, 201)


async def show(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/projects/{project_id}: admins, and tokens scoped to that project."""
    project_id = req.path["project_id"]
    if access.require_token(req).project_id != project_id:
        access.require_admin(req)
    return {"project": views.project(req, await req.app.identity.get_project(project_id))}


async def update(req: ApiRequest) -> dict[str, Any]:
    access.require_admin(req)
    body = await req.json_object()
    validate(body, UPDATE)
    project = await req.app.identity.update_project(req.path["project_id"], body["project"])
    return {"project": views.project(req, project)}


async def delete(req: ApiRequest) -> Reply:
    access.require_admin(req)
    await req.app.identity.delete_project(req.path["project_id"])
    return Reply(None, 204)
