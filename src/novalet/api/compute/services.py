"""Handlers for /os-services (admin): list; enable, disable and force down (by host and
binary below 2.53, by uuid from 2.53); delete."""

from __future__ import annotations

import re
import uuid as uuidlib
from typing import Any

from novalet import exceptions
from novalet.api.compute.schemas import services as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, to_bool, validate
from novalet.common.timeutils import isotime_micro
from novalet.compute.services import (DISABLED, ENABLED, ServiceAPI, ServiceNotFound,
                                      ServiceState)
from novalet.db.limits import INT_MAX
from novalet.policy import enforce

FORCED_DOWN = "2.11"  # forced_down is shown and the force-down action exists
UUID_IDS = "2.53"  # ids are uuids; PUT /os-services/{uuid} replaces the actions


class UnknownServiceAction(exceptions.NotFound):
    msg_fmt = ("Unknown action %(action)s: below microversion 2.53 it is enable, disable, "
               "disable-log-reason or (from 2.11) force-down.")


def view(req: ApiRequest, state: ServiceState) -> dict[str, Any]:
    """A service as list and (from 2.53) update show it."""
    record = state.record
    body: dict[str, Any] = {
        "id": record.uuid if req.at_least(UUID_IDS) else record.id,
        "binary": record.binary, "host": record.host, "zone": state.zone,
        "status": DISABLED if record.disabled else ENABLED,
        "state": "up" if state.up else "down",
        "updated_at": isotime_micro(state.updated_at),
        "disabled_reason": record.disabled_reason}
    if req.at_least(FORCED_DOWN):
        body["forced_down"] = record.forced_down
    return body


def _service_api(req: ApiRequest) -> ServiceAPI:
    # Holds nothing but the database and configuration: cheap to make per request.
    return ServiceAPI(req.app.db, req.app.conf)


@accepts(query=schemas.INDEX_QUERY)
async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /os-services?host=&binary= (API services are never listed)."""
    enforce(req.ctx, "os_compute_api:os-services:list")
    params = dict(req.query)
    states = await _service_api(req).list_services(host=params.get("host") or None,
                                                    binary=params.get("binary") or None)
    return {"services": [view(req, s) for s in states]}


@accepts(body=schemas.update)
async def update(req: ApiRequest) -> dict[str, Any]:
    """PUT /os-services/{action} with host and binary below 2.53; PUT /os-services/{uuid}
    with status, disabled_reason and forced_down from 2.53."""
    enforce(req.ctx, "os_compute_api:os-services:update")
    body = await req.json_object()
    validate(body, schemas.update(req.at_least))
    api = _service_api(req)
    if req.at_least(UUID_IDS):
        record = await api.get(_uuid(req.path["service_id"]))
        forced_down = to_bool(body["forced_down"]) if "forced_down" in body else None
        state = await api.update(record, status=body.get("status"),
                                 disabled_reason=body.get("disabled_reason"),
                                 forced_down=forced_down)
        return {"service": view(req, state)}
    change = _action_change(req, req.path["service_id"], body)
    await api.update_by_host(body["host"], body["binary"], **change)
    # Nova answers an action with what it asked for, not the whole service.
    return {"service": {"host": body["host"], "binary": body["binary"], **change}}


def _action_change(req: ApiRequest, action: str, body: dict[str, Any]) -> dict[str, Any]:
    """What an action below 2.53 changes, as ServiceAPI.update keywords."""
    if action == "enable":
        return {"status": ENABLED}
    if action == "disable":
        return {"status": DISABLED}
    if action == "disable-log-reason":
        if "disabled_reason" not in body:
            raise ValidationError(reason="Missing disabled reason field: disable-log-reason "
                                  "needs 'disabled_reason'.")
        return {"status": DISABLED, "disabled_reason": body["disabled_reason"]}
    if action == "force-down" and req.at_least(FORCED_DOWN):
        if "forced_down" not in body:
            raise ValidationError(reason="Missing forced_down field: force-down needs "
                                  "'forced_down' (true or false).")
        return {"forced_down": to_bool(body["forced_down"])}
    raise UnknownServiceAction(action=action)


@accepts()
async def delete(req: ApiRequest) -> Reply:
    """DELETE /os-services/{id}: an integer id below 2.53, a uuid from 2.53."""
    enforce(req.ctx, "os_compute_api:os-services:delete")
    raw = req.path["service_id"]
    key = _uuid(raw) if req.at_least(UUID_IDS) else _integer_id(raw)
    api = _service_api(req)
    await api.delete(await api.get(key))
    return Reply(None, 204)


def _uuid(raw: str) -> str:
    """The canonical form of a uuid-like path id, or a 400 as Nova gives."""
    try:
        return str(uuidlib.UUID(raw))
    except ValueError:
        raise ValidationError(reason=f"Invalid uuid {raw}: from microversion {UUID_IDS} "
                              "a service is named by its UUID.") from None


def _integer_id(raw: str) -> int:
    if not re.fullmatch(r"-?[0-9]+", raw):
        raise ValidationError(reason=f"Invalid service id {raw}: below microversion "
                              f"{UUID_IDS} a service is named by its integer id.")
    number = int(raw)
    if not 0 < number <= INT_MAX:  # ids beyond a 32-bit column can't exist
        raise ServiceNotFound(service_id=raw)
    return number
