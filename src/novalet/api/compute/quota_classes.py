"""Handlers for /os-quota-class-sets: the limits of a quota class ("default" is the
one every project without limits of its own gets)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import quotas as schemas
from novalet.api.handler import ApiRequest
from novalet.api.validation import ValidationError, accepts, validate
from novalet.policy import enforce


def _shown(req: ApiRequest, values: dict[str, int]) -> dict[str, int]:
    named = {schemas.API_NAMES.get(r, r): v for r, v in values.items()}
    return {name: named[name] for name in schemas.quota_class_fields(req.at_least)}


def _class_name(req: ApiRequest) -> str:
    name = str(req.path["class_id"])
    if not 1 <= len(name) <= 255:
        raise ValidationError(reason="The quota class name must be 1 to 255 characters.")
    return name


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    name = _class_name(req)
    enforce(req.ctx, "os_compute_api:os-quota-class-sets:show")
    limits = await req.app.quotas.class_limits(name)
    return {"quota_class_set": {"id": name, **_shown(req, limits)}}


@accepts(body=schemas.update_class)
async def update(req: ApiRequest) -> dict[str, Any]:
    name = _class_name(req)
    enforce(req.ctx, "os_compute_api:os-quota-class-sets:update")
    body = await req.json_object()
    validate(body, schemas.update_class(req.at_least))
    values = {schemas.RESOURCE_NAMES.get(k, k): int(v)
              for k, v in body["quota_class_set"].items()}
    limits = await req.app.quotas.set_class_limits(name, values)
    return {"quota_class_set": _shown(req, limits)}
