"""Tokens and what a token may see: /v3/auth/tokens, /v3/auth/catalog, /v3/auth/projects."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, params, views
from novalet.api.validation import ValidationError, validate

_DOMAIN: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}}}
_PASSWORD_USER: dict[str, Any] = {"type": "object", "required": ["password"], "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "password": {"type": "string"},
    "domain": _DOMAIN}}
_PROJECT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "domain": _DOMAIN}}
_IDENTITY: dict[str, Any] = {"type": "object", "required": ["methods"], "properties": {
    "methods": {"type": "array", "minItems": 1, "items": {"type": "string"}},
    "password": {"type": "object", "required": ["user"], "properties": {
        "user": _PASSWORD_USER}},
    "token": {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}}},
    "application_credential": {"type": "object", "required": ["secret"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "secret": {"type": "string"},
        "user": {"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "domain": _DOMAIN}}}}}}
ISSUE: dict[str, Any] = {"type": "object", "required": ["auth"], "properties": {
    "auth": {"type": "object", "required": ["identity"], "properties": {
        "identity": _IDENTITY,
        "scope": {"anyOf": [{"const": "unscoped"},
                            {"type": "object", "properties": {
                                "project": _PROJECT,
                                "system": {"type": "object", "properties": {
                                    "all": {"type": "boolean"}}}}}]}}}}}


class CatalogNeedsScope(exceptions.Forbidden):
    msg_fmt = "A project-scoped token is required to produce a service catalog."


async def issue(req: ApiRequest) -> Reply:
    """POST /v3/auth/tokens: 201, the token id in X-Subject-Token, its payload in the body."""
    body = await req.json_object()
    validate(body, ISSUE)
    token_id, data = await req.app.identity.authenticate(body)
    catalog = req.app.identity.catalog(req.app.conf.public_url)
    return Reply(views.token(data, catalog), 201, {"X-Subject-Token": token_id})


async def check(req: ApiRequest) -> Reply:
    """GET and HEAD /v3/auth/tokens: is X-Subject-Token valid (200) or not (404)?
    Anyone may check their own tokens; checking another user's takes an admin."""
    caller = access.require_token(req)
    subject_id = req.raw.headers.get("x-subject-token")
    if not subject_id:
        raise ValidationError(reason="The X-Subject-Token header is required.")
    data = await req.app.identity.validate_subject_token(subject_id)
    if data.user_id != caller.user_id:
        access.require_admin(req)
    headers = {"X-Subject-Token": subject_id}
    if req.raw.method == "HEAD":
        return Reply(None, 200, headers)
    catalog = (None if params.flag(req.query, "nocatalog")
               else req.app.identity.catalog(req.app.conf.public_url))
    return Reply(views.token(data, catalog), 200, headers)


async def revoke(req: ApiRequest) -> Reply:
    """DELETE /v3/auth/tokens: revoke X-Subject-Token (and tokens rescoped from it);
    one's own, or any as an admin. 204; checking it afterwards is 404."""
    caller = access.require_token(req)
    subject_id = _subject(req)
    data = await req.app.identity.validate_subject_token(subject_id)
    if data.user_id != caller.user_id:
        access.require_admin(req)
    await req.app.identity.revoke_token(subject_id)
    return Reply(None, 204)


def _subject(req: ApiRequest) -> str:
    subject_id = req.raw.headers.get("x-subject-token")
    if not subject_id:
        raise ValidationError(reason="The X-Subject-Token header is required.")
    return subject_id


async def catalog(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/auth/catalog: the catalog a project- or system-scoped token carries."""
    token = access.require_token(req)
    if token.project_id is None and token.system is None:
        raise CatalogNeedsScope()
    return views.collection(req, "catalog",
                            req.app.identity.catalog(req.app.conf.public_url))


async def projects(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/auth/projects: the enabled projects the caller may scope a token to."""
    caller = access.require_token(req)
    found = await req.app.identity.projects_of_user(caller.user_id, enabled_only=True)
    return views.collection(req, "projects", [views.project(req, p) for p in found])
