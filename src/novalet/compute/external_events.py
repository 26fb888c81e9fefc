"""Events other services report about instances (os-server-external-events): each is
checked against its instance and cast to the instance's compute host."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.db import instances
from novalet.db.engine import Database

LOG = logging.getLogger(__name__)


class NoInstancesForEvents(exceptions.NotFound):
    msg_fmt = "No instances found for any event"


@dataclass
class EventResult:
    event: dict[str, Any]
    code: int

    @property
    def status(self) -> str:
        return self.event.get("status", "completed") if self.code == 200 else "failed"


async def send_events(db: Database, rpc: compute_rpcapi.ComputeAPI, ctx: RequestContext,
                      events: list[dict[str, Any]]) -> list[EventResult]:
    """Each event's outcome: 200 (cast to its host), 404 (no such instance) or 422
    (the instance is on no host). NoInstancesForEvents (404) if none exists."""
    uuids = sorted({e["server_uuid"] for e in events})
    rows = await instances.list_instances(db, instances.ListQuery(uuids=uuids, sort=[
        ("id", "asc")]))
    by_uuid = {r.uuid: r for r in rows}
    if not by_uuid:
        raise NoInstancesForEvents()
    results: list[EventResult] = []
    per_host: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        instance = by_uuid.get(event["server_uuid"])
        if instance is None:
            results.append(EventResult(event, 404))
        elif instance.host is None:
            LOG.info("Dropping event %s for %s: the instance is on no host", event["name"],
                     instance.uuid)
            results.append(EventResult(event, 422))
        else:
            per_host.setdefault(instance.host, []).append(
                {"status": "completed", "tag": None, **event})
            results.append(EventResult(event, 200))
    for host, host_events in per_host.items():
        await rpc.external_instance_event(ctx, host, host_events)
    return results
