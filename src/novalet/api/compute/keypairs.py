"""Handlers for /os-keypairs: list, create or import, show, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from novalet.api.compute.schemas import keypairs as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import accepts, query_int, validate
from novalet.common.timeutils import isotime_micro
from novalet.compute.keypairs import KeyPair
from novalet.policy import enforce


def _brief(req: ApiRequest, keypair: KeyPair) -> dict[str, Any]:
    body: dict[str, Any] = {"name": keypair.name, "public_key": keypair.public_key,
                            "fingerprint": keypair.fingerprint}
    if req.at_least("2.2"):
        body["type"] = keypair.type
    return body


def _full(req: ApiRequest, keypair: KeyPair) -> dict[str, Any]:
    # Nova shows soft-delete fields that are never set; clients expect them.
    return {**_brief(req, keypair), "user_id": keypair.user_id, "id": keypair.id,
            "created_at": isotime_micro(keypair.created_at),
            "updated_at": isotime_micro(keypair.updated_at),
            "deleted": False, "deleted_at": None}


def _target_user(req: ApiRequest, rule: str, requested: str | None) -> str:
    """The user whose key pairs are meant: from 2.10 an admin may name another."""
    user_id = (requested if req.at_least("2.10") else None) or req.ctx.user_id or ""
    enforce(req.ctx, rule, target={"user_id": user_id})
    if user_id != req.ctx.user_id:
        enforce(req.ctx, "os_compute_api:os-keypairs:other_user")
    return user_id


@accepts(query=schemas.index_query)
async def index(req: ApiRequest) -> dict[str, Any]:
    params = dict(req.query)
    user_id = _target_user(req, "os_compute_api:os-keypairs:index", params.get("user_id"))
    limit = marker = None
    if req.at_least("2.35"):
        max_limit = req.app.conf.get("api", "max_limit")
        asked = query_int(params.get("limit"), "limit")
        limit = max_limit if asked is None else min(asked, max_limit)
        marker = params.get("marker")
    keypairs = await req.app.keypairs.list_for_user(req.ctx, user_id, limit, marker)
    body: dict[str, Any] = {"keypairs": [{"keypair": _brief(req, k)} for k in keypairs]}
    if limit and len(keypairs) == limit:
        body["keypairs_links"] = [{"rel": "next", "href": _next(req, keypairs[-1].name)}]
    return body


def _next(req: ApiRequest, marker: str) -> str:
    params = sorted((k, v) for k, v in req.query.items() if k != "marker")
    params.append(("marker", marker))
    return f"{req.app.conf.public_url}/compute/v2.1/os-keypairs?{urlencode(params)}"


@accepts(body=schemas.create)
async def create(req: ApiRequest) -> Reply:
    """Import a public key, or (before 2.92) generate a pair and return the private key."""
    body = await req.json_object()
    validate(body, schemas.create(req.at_least))
    params = body["keypair"]
    user_id = _target_user(req, "os_compute_api:os-keypairs:create", params.get("user_id"))
    key_type = params.get("type", "ssh")
    private_key = None
    if "public_key" in params:
        keypair = await req.app.keypairs.import_key(user_id, params["name"],
                                                    params["public_key"], key_type,
                                                    project_id=req.ctx.project_id or "")
    else:
        keypair, private_key = await req.app.keypairs.generate(
            user_id, params["name"], key_type, project_id=req.ctx.project_id or "")
    result = {**_brief(req, keypair), "user_id": keypair.user_id}
    if private_key is not None:
        result["private_key"] = private_key
    return Reply({"keypair": result}, 201 if req.at_least("2.2") else 200)


@accepts(query=schemas.item_query)
async def show(req: ApiRequest) -> dict[str, Any]:
    params = dict(req.query)
    # Policy has no separate show rule yet; showing one key pair is listing it.
    user_id = _target_user(req, "os_compute_api:os-keypairs:index", params.get("user_id"))
    keypair = await req.app.keypairs.get(req.ctx, req.path["name"], user_id)
    return {"keypair": _full(req, keypair)}


@accepts(query=schemas.item_query)
async def delete(req: ApiRequest) -> Reply:
    params = dict(req.query)
    user_id = _target_user(req, "os_compute_api:os-keypairs:delete", params.get("user_id"))
    await req.app.keypairs.delete(req.ctx, req.path["name"], user_id)
    return Reply(None, 204 if req.at_least("2.2") else 202)
