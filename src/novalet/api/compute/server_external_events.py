"""Handler for POST /os-server-external-events (admin; how network and volume services
tell compute that something happened to an instance)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import server_external_events as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import accepts, validate
from novalet.compute.external_events import send_events
from novalet.policy import enforce


@accepts(body=schemas.create)
async def create(req: ApiRequest) -> Reply:
    """200 when every event was accepted, else 207 with each event's code (404 for an
    unknown instance, 422 for one on no host); a 404 when no instance exists."""
    enforce(req.ctx, "os_compute_api:os-server-external-events:create")
    body = await req.json_object()
    validate(body, schemas.create(req.at_least))
    results = await send_events(req.app.db, req.app.compute.compute, req.ctx, body["events"])
    events: list[dict[str, Any]] = []
    for result in results:
        event = {"name": result.event["name"], "server_uuid": result.event["server_uuid"],
                 "status": result.status, "code": result.code}
        if "tag" in result.event:
            event["tag"] = result.event["tag"]
        events.append(event)
    status = 200 if all(r.code == 200 for r in results) else 207
    return Reply({"events": events}, status)
