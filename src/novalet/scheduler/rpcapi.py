"""Client of the scheduler service.

Versions of the scheduler RPC API:

- 1.0: select_destinations(spec: RequestSpec) -> [Destination] (the scheduler
  of the previous release answers plain dicts of the same fields and one more,
  read as 1.0; this one tags them, which a reader of those dicts ignores).
"""

from __future__ import annotations

from typing import Any

from novalet.common.context import RequestContext
from novalet.compute.move_payloads import MoveSpec
from novalet.compute.payloads import Destination, RequestSpec
from novalet.rpc.bus import Bus

TOPIC = "scheduler"
VERSION = "1.1"


class SchedulerAPI:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def select_destinations(self, ctx: RequestContext, spec: RequestSpec
                                  ) -> list[Destination]:
        """One claimed destination per instance of the spec, or NoValidHost."""
        result: list[dict[str, Any]] = await self.bus.call(
            ctx, TOPIC, "select_destinations", {"spec": spec.to_dict()}, version="1.0")
        return [Destination.from_dict(d) for d in result]

    async def select_move_destination(self, ctx: RequestContext, spec: MoveSpec
                                      ) -> Destination:
        """One claimed destination for a move (claimed for spec.consumer), or
        NoValidHost."""
        result: dict[str, Any] = await self.bus.call(
            ctx, TOPIC, "select_move_destination", {"spec": spec.to_dict()}, version="1.1")
        return Destination.from_dict(result)
