"""Handlers for /flavors: list, detail, show, create, update (2.55), delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from novalet import exceptions
from novalet.api.compute.schemas import flavors as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, query_int, to_bool, validate
from novalet.common.bounded_regex import compile_pattern
from novalet.compute.flavors import Flavor, FlavorQuery, NewFlavor, extra_specs_of
from novalet.db.limits import INT_MAX, INT_MIN
from novalet.policy import authorize, enforce

# Flavors lose rxtx_factor and OS-FLV-DISABLED:disabled, and lists take `name`.
NO_RXTX = "2.102"
_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")


def links(req: ApiRequest, flavorid: str) -> list[dict[str, str]]:
    base = req.app.conf.public_url + "/compute"
    return [{"rel": "self", "href": f"{base}/v2.1/flavors/{flavorid}"},
            {"rel": "bookmark", "href": f"{base}/flavors/{flavorid}"}]


def brief(req: ApiRequest, flavor: Flavor) -> dict[str, Any]:
    body: dict[str, Any] = {"id": flavor.flavorid, "name": flavor.name,
                            "links": links(req, flavor.flavorid)}
    if req.at_least("2.55"):
        body["description"] = flavor.description
    return body


def full(req: ApiRequest, flavor: Flavor) -> dict[str, Any]:
    """A flavor as show and detail present it at the request's microversion."""
    body: dict[str, Any] = {
        "id": flavor.flavorid, "name": flavor.name, "ram": flavor.memory_mb,
        "disk": flavor.root_gb, "vcpus": flavor.vcpus,
        # Below 2.75 no swap is an empty string, as in Nova.
        "swap": flavor.swap if req.at_least("2.75") else (flavor.swap or ""),
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "os-flavor-access:is_public": flavor.is_public, "links": links(req, flavor.flavorid)}
    if not req.at_least(NO_RXTX):
        body.update({"OS-FLV-DISABLED:disabled": flavor.disabled,
                     "rxtx_factor": flavor.rxtx_factor})
    if req.at_least("2.55"):
        body["description"] = flavor.description
    if req.at_least("2.61") and authorize(req.ctx, "os_compute_api:os-flavor-extra-specs:index"):
        body["extra_specs"] = extra_specs_of(flavor)
    return body


@accepts(query=schemas.index_query)
async def index(req: ApiRequest) -> dict[str, Any]:
    flavors, page_size = await _list(req)
    return _page(req, "flavors", [brief(req, f) for f in flavors], flavors, page_size)


@accepts(query=schemas.index_query)
async def detail(req: ApiRequest) -> dict[str, Any]:
    flavors, page_size = await _list(req)
    return _page(req, "flavors/detail", [full(req, f) for f in flavors], flavors, page_size)


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    flavor = await req.app.flavors.get(req.ctx, req.path["flavor_id"])
    return {"flavor": full(req, flavor)}


@accepts(body=schemas.create)
async def create(req: ApiRequest) -> dict[str, Any]:
    body = await req.json_object()
    validate(body, schemas.create(req.at_least))
    enforce(req.ctx, "os_compute_api:os-flavor-manage:create")
    flavor = await req.app.flavors.create(_new_flavor(req, body["flavor"]))
    return {"flavor": full(req, flavor)}


@accepts(body=schemas.UPDATE_255)
async def update(req: ApiRequest) -> dict[str, Any]:
    if not req.at_least("2.55"):
        raise exceptions.NotFound("The resource could not be found.")
    body = await req.json_object()
    validate(body, schemas.UPDATE_255)
    enforce(req.ctx, "os_compute_api:os-flavor-manage:update")
    flavor = await req.app.flavors.update_description(req.path["flavor_id"],
                                                      body["flavor"]["description"])
    return {"flavor": full(req, flavor)}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    enforce(req.ctx, "os_compute_api:os-flavor-manage:delete")
    await req.app.flavors.delete(req.path["flavor_id"])
    return Reply(None, 202)


def _new_flavor(req: ApiRequest, values: dict[str, Any]) -> NewFlavor:
    flavorid = values.get("id")
    return NewFlavor(
        name=values["name"], flavorid=None if flavorid is None else str(flavorid),
        memory_mb=_integer(values["ram"], "ram", 1),
        vcpus=_integer(values["vcpus"], "vcpus", 1),
        root_gb=_integer(values["disk"], "disk", 0),
        ephemeral_gb=_integer(values.get("OS-FLV-EXT-DATA:ephemeral", 0), "ephemeral", 0),
        swap=_integer(values.get("swap", 0), "swap", 0),
        rxtx_factor=_rxtx_factor(values.get("rxtx_factor", 1.0)),
        is_public=to_bool(values.get("os-flavor-access:is_public", True)),
        description=values.get("description") if req.at_least("2.55") else None)


def _integer(value: int | str, name: str, minimum: int) -> int:
    """The schema lets digit strings through; bound them as numbers are bound."""
    number = int(value)
    if number < minimum:
        raise ValidationError(reason=f"{name} must be >= {minimum}")
    if number > schemas.MAX_INT:
        raise ValidationError(reason=f"{name} must be <= {schemas.MAX_INT}")
    return number


def _rxtx_factor(value: float | str) -> float:
    factor = float(value)
    if not 0 < factor <= schemas.MAX_FLOAT:
        raise ValidationError(reason="'rxtx_factor' argument must be a float between 0 "
                              f"and {schemas.MAX_FLOAT:g}")
    return factor


async def _list(req: ApiRequest) -> tuple[list[Flavor], int]:
    params = dict(req.query)
    max_limit = req.app.conf.get("api", "max_limit")
    limit = query_int(params.get("limit"), "limit")
    page_size = max_limit if limit is None else min(limit, max_limit)
    q = FlavorQuery(sort_key=params.get("sort_key") or "flavorid",
                    sort_dir=params.get("sort_dir") or "asc",
                    limit=page_size, marker=params.get("marker"),
                    min_memory_mb=_min_filter(params, "minRam"),
                    min_root_gb=_min_filter(params, "minDisk"),
                    name_pattern=_name_filter(req, params))
    if q.sort_key == "vcpu_weight":  # a Nova column Novalet does not have
        q.sort_key = "id"
    if req.ctx.is_admin:
        q.is_public = _is_public(params.get("is_public"))
    else:
        q.disabled = False
    return await req.app.flavors.list_flavors(req.ctx, q), page_size


def _name_filter(req: ApiRequest, params: dict[str, str]) -> str | None:
    """2.102's name filter, a regular expression (a bad one is a 400)."""
    raw = params.get("name")
    if not req.at_least(NO_RXTX) or not raw:
        return None
    compile_pattern(raw, "name")
    return raw


def _min_filter(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    try:
        value = int(params[name])
    except ValueError:
        raise ValidationError(reason=f"Invalid {name} filter [{params[name]}]") from None
    if not INT_MIN <= value <= INT_MAX:  # a 32-bit column
        raise ValidationError(reason=f"Invalid {name} filter [{params[name]}]")
    return value


def _is_public(raw: str | None) -> bool | None:
    """Only admins filter on is_public: absent means public, 'none' means all."""
    if raw is None:
        return True
    if raw.lower() == "none":
        return None
    if raw.lower() in _TRUE or raw.lower() in _FALSE:
        return raw.lower() in _TRUE
    raise ValidationError(reason=f"Invalid is_public filter [{raw}]")


def _page(req: ApiRequest, path: str, items: list[dict[str, Any]], flavors: list[Flavor],
          page_size: int) -> dict[str, Any]:
    body: dict[str, Any] = {"flavors": items}
    if page_size and len(flavors) == page_size:
        params = sorted((k, v) for k, v in req.query.items() if k != "marker")
        params.append(("marker", flavors[-1].flavorid))
        href = f"{req.app.conf.public_url}/compute/v2.1/{path}?{urlencode(params)}"
        body["flavors_links"] = [{"rel": "next", "href": href}]
    return body
