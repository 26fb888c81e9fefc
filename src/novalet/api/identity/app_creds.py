"""Application credentials: /v3/users/{user_id}/application_credentials[/{app_cred_id}]."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, views
from novalet.api.validation import validate

_ROLE_REF: dict[str, Any] = {"type": "object", "minProperties": 1,
                             "additionalProperties": False, "properties": {
                                 "id": {"type": "string"}, "name": {"type": "string"}}}
CREATE: dict[str, Any] = {"type": "object", "required": ["application_credential"],
                          "properties": {"application_credential": {
    "type": "object", "required": ["name"], "additionalProperties": False, "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"},
        "description": {"type": ["string", "null"], "maxLength": 65535},
        "secret": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
        "expires_at": {"type": ["string", "null"]},
        "roles": {"type": "array", "items": _ROLE_REF},
        "unrestricted": {"type": ["boolean", "null"]},
        "access_rules": {"type": "array", "maxItems": 0}}}}}


class OwnCredentialsOnly(exceptions.Forbidden):
    msg_fmt = "Users create application credentials only for themselves."


async def create(req: ApiRequest) -> Reply:
    """POST: the caller, for themselves, on their token's project; the secret is in
    this answer only."""
    token = access.require_token(req)
    if token.user_id != req.path["user_id"]:
        raise OwnCredentialsOnly()
    body = await req.json_object()
    validate(body, CREATE)
    cred, secret = await req.app.identity.create_app_cred(
        token, token.user_id, body["application_credential"])
    return Reply({"application_credential": views.app_cred(req, cred, secret)}, 201)


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET, filtered by ?name=: the owner, or an admin."""
    access.require_self_or_admin(req, req.path["user_id"])
    found = await req.app.identity.list_app_creds(req.path["user_id"],
                                                  req.query.get("name"))
    return views.collection(req, "application_credentials",
                            [views.app_cred(req, c) for c in found])


async def show(req: ApiRequest) -> dict[str, Any]:
    access.require_self_or_admin(req, req.path["user_id"])
    cred = await req.app.identity.get_app_cred(req.path["user_id"],
                                               req.path["app_cred_id"])
    return {"application_credential": views.app_cred(req, cred)}


async def delete(req: ApiRequest) -> Reply:
    """DELETE: the tokens made with the credential stop working."""
    access.require_self_or_admin(req, req.path["user_id"])
    await req.app.identity.delete_app_cred(access.require_token(req), req.path["user_id"],
                                           req.path["app_cred_id"])
    return Reply(None, 204)
