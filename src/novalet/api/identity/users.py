"""Users: /v3/users, /v3/users/{user_id}, its projects and its password."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, params, views
from novalet.api.validation import ValidationError, validate

NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"}
_FIELDS: dict[str, Any] = {
    "name": NAME,
    "password": {"type": ["string", "null"]},
    "enabled": {"type": "boolean"},
    "default_project_id": {"type": ["string", "null"]},
    "email": {"type": ["string", "null"], "maxLength": 255},
    "options": {"type": "object", "maxProperties": 0},
}
# Other attributes are kept as Keystone keeps them (identity/user_extras.py).
CREATE: dict[str, Any] = {"type": "object", "required": ["user"], "properties": {"user": {
    "type": "object", "required": ["name"],
    "properties": {**_FIELDS, "domain_id": {"type": "string"}}}}}
UPDATE: dict[str, Any] = {"type": "object", "required": ["user"], "properties": {"user": {
    "type": "object", "properties": _FIELDS}}}
CHANGE_PASSWORD: dict[str, Any] = {"type": "object", "required": ["user"], "properties": {
    "user": {"type": "object", "required": ["password", "original_password"],
             "additionalProperties": False, "properties": {
                 "password": {"type": "string", "minLength": 1},
                 "original_password": {"type": "string"}}}}}


class OwnPasswordOnly(exceptions.Forbidden):
    msg_fmt = "Users may only change their own password; admins set others' with PATCH."


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/users, filtered by ?name=, ?domain_id=, ?enabled=."""
    access.require_admin(req)
    found = await req.app.identity.list_users(
        name=req.query.get("name"), domain_id=req.query.get("domain_id"),
        enabled=params.optional_bool(req.query, "enabled"))
    return views.collection(req, "users", [views.user(req, u) for u in found])


async def create(req: ApiRequest) -> Reply:
    access.require_admin(req)
    body = await req.json_object()
    validate(body, CREATE)
    user = await req.app.identity.create_user(body["user"])
    return Reply({"user": views.user(req, user)}, 201)


async def show(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/users/{user_id}: admins, and every user for themselves."""
    access.require_self_or_admin(req, req.path["user_id"])
    return {"user": views.user(req, await req.app.identity.get_user(req.path["user_id"]))}


async def update(req: ApiRequest) -> dict[str, Any]:
    access.require_admin(req)
    body = await req.json_object()
    validate(body, UPDATE)
    if "domain_id" in body["user"]:
        raise ValidationError(reason="Cannot change Domain ID")
    user = await req.app.identity.update_user(req.path["user_id"], body["user"])
    return {"user": views.user(req, user)}


async def delete(req: ApiRequest) -> Reply:
    access.require_admin(req)
    await req.app.identity.delete_user(req.path["user_id"])
    return Reply(None, 204)


async def projects(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/users/{user_id}/projects: where the user holds a role."""
    access.require_self_or_admin(req, req.path["user_id"])
    found = await req.app.identity.projects_of_user(req.path["user_id"])
    return views.collection(req, "projects", [views.project(req, p) for p in found])


async def change_password(req: ApiRequest) -> Reply:
    """POST /v3/users/{user_id}/password: the user, proving the original password."""
    if access.require_token(req).user_id != req.path["user_id"]:
        raise OwnPasswordOnly()
    body = await req.json_object()
    validate(body, CHANGE_PASSWORD)
    await req.app.identity.change_password(req.path["user_id"],
                                           body["user"]["original_password"],
                                           body["user"]["password"])
    return Reply(None, 204)
