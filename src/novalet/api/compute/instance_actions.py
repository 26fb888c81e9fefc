"""Handlers for /servers/{id}/os-instance-actions."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import instance_actions as schemas
from novalet.api.handler import ApiRequest
from novalet.api.validation import ValidationError, accepts, query_int
from novalet.common.timeutils import isotime_micro, parse_isotime
from novalet.compute.api import ComputeAPI
from novalet.db.models import InstanceAction, InstanceActionEvent
from novalet.policy import authorize, enforce


def _action(req: ApiRequest, action: InstanceAction) -> dict[str, Any]:
    body = {"action": action.action, "instance_uuid": action.instance_uuid,
            "request_id": action.request_id, "user_id": action.user_id,
            "project_id": action.project_id, "start_time": isotime_micro(action.start_time),
            "message": action.message}
    if req.at_least("2.58"):
        body["updated_at"] = isotime_micro(action.updated_at or action.start_time)
    return body


def _event(req: ApiRequest, event: InstanceActionEvent, host_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"event": event.event, "start_time": isotime_micro(event.start_time),
                            "finish_time": isotime_micro(event.finish_time),
                            "result": event.result}
    admin = authorize(req.ctx, "os_compute_api:os-instance-actions:events")
    if admin:
        body["traceback"] = event.traceback
    if req.at_least("2.62"):
        body["hostId"] = host_id
        if admin:
            body["host"] = event.host
    if req.at_least("2.84") and authorize(
            req.ctx, "os_compute_api:os-instance-actions:events:details"):
        body["details"] = event.details
    return body


@accepts(query=schemas.INDEX_QUERY)
async def index(req: ApiRequest) -> dict[str, Any]:
    compute: ComputeAPI = req.app.compute
    enforce(req.ctx, "os_compute_api:os-instance-actions:list")
    filters: dict[str, Any] = {}
    if req.at_least("2.58"):
        filters["limit"] = query_int(req.query.get("limit"), "limit")
        filters["marker"] = req.query.get("marker")
        for key, name in (("changes-since", "changes_since"),
                          ("changes-before", "changes_before")):
            if req.query.get(key) and (key == "changes-since" or req.at_least("2.66")):
                try:
                    filters[name] = parse_isotime(req.query[key])
                except ValueError:
                    raise ValidationError(reason=f"Invalid input for query parameters "
                                          f"{key}.") from None
    actions = await compute.actions(req.ctx, req.path["server_id"], **filters)
    return {"instanceActions": [_action(req, a) for a in actions]}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    compute: ComputeAPI = req.app.compute
    enforce(req.ctx, "os_compute_api:os-instance-actions:list")
    action = await compute.action(req.ctx, req.path["server_id"], req.path["request_id"])
    body = _action(req, action)
    if req.at_least("2.51") or authorize(req.ctx, "os_compute_api:os-instance-actions:events"):
        body["events"] = [_event(req, e, "") for e in action.events]
    return {"instanceAction": body}
