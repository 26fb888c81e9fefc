"""Handlers for a flavor's extra specs (os-extra_specs)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import flavor_extra_specs as schemas
from novalet.api.handler import ApiRequest
from novalet.api.validation import ValidationError, accepts, validate
from novalet.compute.flavors import FlavorExtraSpecsNotFound, extra_specs_of
from novalet.policy import enforce

# Policy has no separate show rule yet; reading one spec is reading the specs.
_READ = "os_compute_api:os-flavor-extra-specs:index"


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, _READ, req.ctx.project_id)
    flavor = await req.app.flavors.get(req.ctx, req.path["flavor_id"])
    return {"extra_specs": extra_specs_of(flavor)}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, _READ, req.ctx.project_id)
    flavorid, key = req.path["flavor_id"], req.path["key"]
    specs = extra_specs_of(await req.app.flavors.get(req.ctx, flavorid))
    if key not in specs:
        raise FlavorExtraSpecsNotFound(flavor_id=flavorid, key=key)
    return {key: specs[key]}


@accepts(body=schemas.CREATE)
async def create(req: ApiRequest) -> dict[str, Any]:
    """Merge the posted specs into the flavor's; answers with what was posted."""
    body = await req.json_object()
    validate(body, schemas.CREATE)
    enforce(req.ctx, "os_compute_api:os-flavor-extra-specs:create")
    specs = _as_strings(body["extra_specs"])
    await req.app.flavors.update_extra_specs(req.ctx, req.path["flavor_id"], specs)
    return body


@accepts(body=schemas.UPDATE)
async def update(req: ApiRequest) -> dict[str, Any]:
    body = await req.json_object()
    validate(body, schemas.UPDATE)
    enforce(req.ctx, "os_compute_api:os-flavor-extra-specs:update")
    specs = _as_strings(body)
    if req.path["key"] not in specs:
        raise ValidationError(reason="Request body and URI mismatch")
    await req.app.flavors.update_extra_specs(req.ctx, req.path["flavor_id"], specs)
    return body


@accepts()
async def delete(req: ApiRequest) -> None:
    enforce(req.ctx, "os_compute_api:os-flavor-extra-specs:delete")
    await req.app.flavors.delete_extra_spec(req.ctx, req.path["flavor_id"], req.path["key"])


def _as_strings(specs: dict[str, Any]) -> dict[str, str]:
    """Numbers are accepted and stored as their text, which must fit 255 characters."""
    result = {key: str(value) for key, value in specs.items()}
    for value in result.values():
        if len(value) > 255:
            raise ValidationError(reason="extra_specs value has more than 255 characters.")
    return result
