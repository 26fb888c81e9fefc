"""Client of the scheduler service."""

from __future__ import annotations

from typing import Any

from novalet.common.context import RequestContext
from novalet.compute.payloads import RequestSpec
from novalet.rpc.bus import Bus

TOPIC = "scheduler"
VERSION = "1.0"


class SchedulerAPI:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def select_destinations(self, ctx: RequestContext, spec: RequestSpec
                                  ) -> list[dict[str, Any]]:
        """One claimed destination per instance of the spec, or NoValidHost."""
        result: list[dict[str, Any]] = await self.bus.call(
            ctx, TOPIC, "select_destinations", {"spec": spec.to_dict()}, version=VERSION)
        return result
