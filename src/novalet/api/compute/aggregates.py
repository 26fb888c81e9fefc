"""Handlers for /os-aggregates (admin): list, create, show, update, delete, and the
add_host, remove_host and set_metadata actions."""

from __future__ import annotations

import re
from typing import Any

from novalet.api.compute.schemas import aggregates as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, validate
from novalet.common.timeutils import isotime_micro
from novalet.compute.aggregates import AZ_KEY, AggregateAPI, AggregateNotFound
from novalet.db import aggregates as db_aggregates
from novalet.db.limits import INT_MAX
from novalet.db.models import Aggregate
from novalet.policy import enforce

AGGREGATE_UUID = "2.41"  # the view shows the aggregate's uuid


def view(req: ApiRequest, aggregate: Aggregate, full: bool = True) -> dict[str, Any]:
    """An aggregate as Nova shows it; create's answer has no hosts and metadata."""
    metadata = db_aggregates.metadata_of(aggregate)
    body: dict[str, Any] = {
        "id": aggregate.id, "name": aggregate.name,
        "availability_zone": metadata.get(AZ_KEY),
        "created_at": isotime_micro(aggregate.created_at),
        "updated_at": isotime_micro(aggregate.updated_at),
        "deleted": False, "deleted_at": None}
    if full:
        body["hosts"] = [h.host for h in aggregate.hosts]
        body["metadata"] = metadata
    if req.at_least(AGGREGATE_UUID):
        body["uuid"] = aggregate.uuid
    return body


def _api(req: ApiRequest) -> AggregateAPI:
    return AggregateAPI(req.app.db)


def _aggregate_id(req: ApiRequest) -> int:
    raw = req.path["aggregate_id"]
    if not re.fullmatch(r"[0-9]+", raw) or not 0 < int(raw) <= INT_MAX:
        raise AggregateNotFound(aggregate_id=raw)
    return int(raw)


# What each action key takes (the action handler validates it).
ACTIONS = {"add_host": schemas.HOST_ACTION, "remove_host": schemas.HOST_ACTION,
           "set_metadata": schemas.SET_METADATA}


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, "os_compute_api:os-aggregates:index")
    return {"aggregates": [view(req, a) for a in await _api(req).list_aggregates()]}


@accepts(body=schemas.CREATE)
async def create(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, "os_compute_api:os-aggregates:create")
    body = await req.json_object()
    validate(body, schemas.CREATE)
    values = body["aggregate"]
    aggregate = await _api(req).create(values["name"], values.get("availability_zone"))
    return {"aggregate": view(req, aggregate, full=False)}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, "os_compute_api:os-aggregates:show")
    return {"aggregate": view(req, await _api(req).get(_aggregate_id(req)))}


@accepts(body=schemas.UPDATE)
async def update(req: ApiRequest) -> dict[str, Any]:
    """PUT: a new name and/or availability zone (null takes the zone away)."""
    enforce(req.ctx, "os_compute_api:os-aggregates:update")
    body = await req.json_object()
    validate(body, schemas.UPDATE)
    values = body["aggregate"]
    aggregate = await _api(req).update(
        _aggregate_id(req), name=values.get("name"),
        availability_zone=values.get("availability_zone"),
        zone_given="availability_zone" in values)
    return {"aggregate": view(req, aggregate)}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    enforce(req.ctx, "os_compute_api:os-aggregates:delete")
    await _api(req).delete(_aggregate_id(req))
    return Reply(None, 200)


@accepts(actions=ACTIONS)
async def action(req: ApiRequest) -> dict[str, Any]:
    """POST /os-aggregates/{id}/action: add_host, remove_host or set_metadata."""
    body = await req.json_object()
    if len(body) != 1 or next(iter(body)) not in _ACTIONS:
        raise ValidationError(reason=f"There is no such action: {', '.join(body) or '(none)'}")
    ((name, value),) = body.items()
    enforce(req.ctx, f"os_compute_api:os-aggregates:{name}")
    api, aggregate_id = _api(req), _aggregate_id(req)
    if name == "set_metadata":
        validate(value, schemas.SET_METADATA)
        aggregate = await api.set_metadata(aggregate_id, value["metadata"])
    else:
        validate(value, schemas.HOST_ACTION)
        change = api.add_host if name == "add_host" else api.remove_host
        aggregate = await change(aggregate_id, value["host"])
    return {"aggregate": view(req, aggregate)}


_ACTIONS = ("add_host", "remove_host", "set_metadata")
