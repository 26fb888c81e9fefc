"""Handlers for sharing private flavors: os-flavor-access and the access actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from novalet import exceptions
from novalet.api.compute.schemas import flavor_access as schemas
from novalet.api.handler import ApiRequest, MalformedBody
from novalet.api.validation import ValidationError, accepts, validate
from novalet.compute.flavors import Flavor, projects_of
from novalet.policy import enforce


class PublicFlavorAccess(exceptions.Conflict):
    msg_fmt = "Can not add access to a public flavor."


def access_list(flavor: Flavor) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor.flavorid, "tenant_id": project}
                              for project in projects_of(flavor)]}


ACTIONS = {name: schema["properties"][name] for name, schema in (
    ("addTenantAccess", schemas.ADD_TENANT_ACCESS),
    ("removeTenantAccess", schemas.REMOVE_TENANT_ACCESS))}


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    """A private flavor's projects; public flavors have no list (404)."""
    enforce(req.ctx, "os_compute_api:os-flavor-access")
    flavor = await req.app.flavors.get(req.ctx, req.path["flavor_id"])
    if flavor.is_public:
        raise exceptions.NotFound("Access list not available for public flavors.")
    return access_list(flavor)


@accepts(actions=ACTIONS)
async def action(req: ApiRequest) -> dict[str, Any]:
    """POST /flavors/{id}/action: a body with exactly one action key."""
    body = await req.json_object()
    if len(body) != 1:
        raise MalformedBody(reason="too many body keys")
    name = next(iter(body))
    handler = _ACTIONS.get(name)
    if handler is None:
        raise ValidationError(reason=f"There is no such action: {name}")
    return await handler(req, body)


async def _add_tenant_access(req: ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    validate(body, schemas.ADD_TENANT_ACCESS)
    enforce(req.ctx, "os_compute_api:os-flavor-access:add_tenant_access")
    project_id = body["addTenantAccess"]["tenant"]
    await _verify_project(req, project_id)
    flavor = await req.app.flavors.get(req.ctx, req.path["flavor_id"])
    if flavor.is_public and req.at_least("2.7"):
        raise PublicFlavorAccess()
    return access_list(await req.app.flavors.add_access(flavor.flavorid, project_id))


async def _remove_tenant_access(req: ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    validate(body, schemas.REMOVE_TENANT_ACCESS)
    enforce(req.ctx, "os_compute_api:os-flavor-access:remove_tenant_access")
    project_id = body["removeTenantAccess"]["tenant"]
    # A project that no longer exists may still be taken off the list.
    flavor = await req.app.flavors.get(req.ctx, req.path["flavor_id"])
    return access_list(await req.app.flavors.remove_access(flavor.flavorid, project_id))


async def _verify_project(req: ApiRequest, project_id: str) -> None:
    try:
        await req.app.identity.get_project(project_id)
    except exceptions.NotFound:
        raise ValidationError(reason=f"Project ID {project_id} is not a valid project.") \
            from None


_ACTIONS: dict[str, Callable[[ApiRequest, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "addTenantAccess": _add_tenant_access,
    "removeTenantAccess": _remove_tenant_access,
}
