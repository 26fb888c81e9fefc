"""Client of the scheduler service.

Versions of the scheduler RPC API:

- 1.0: select_destinations(spec: RequestSpec) -> [Destination] (the scheduler
  of the previous release answers plain dicts of the same fields and one more,
  read as 1.0; this one tags them, which a reader of those dicts ignores).
- 1.1: select_move_destination(spec: MoveSpec) -> Destination: one destination
  for a migration, resize or live migration, claimed for the move's own consumer
  (conductor/tasks/). Refused (SchedulerTooOld, 409) while `[upgrade_levels]
  scheduler` is below 1.1.

Specs change without a new RPC version while a reader of either release reads the
other's: RequestSpec 1.2 (MoveSpec 1.1) carries `group` as a SchedulingGroup part,
the same {"uuid", "policy", "max_server_per_host"} dict on the wire, and adds
`group_generation` (the scheduler's own, None when sent), which a scheduler of the
previous release ignores.
"""

from __future__ import annotations

from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute.move_payloads import MoveSpec
from novalet.compute.payloads import Destination, RequestSpec
from novalet.rpc import versions
from novalet.rpc.bus import Bus

TOPIC = "scheduler"
VERSION = "1.1"


class SchedulerTooOld(exceptions.Conflict):
    msg_fmt = ("'%(method)s' needs scheduler RPC %(version)s, and [upgrade_levels] "
               "scheduler caps it lower; upgrade the scheduler first")


class SchedulerAPI:
    def __init__(self, bus: Bus, conf: config.Config | None = None) -> None:
        self.bus = bus
        # [upgrade_levels] scheduler (none without a configuration)
        self.caps = versions.Caps.from_conf(conf) if conf is not None else versions.Caps()

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
        if self.caps.version("scheduler", "1.1", fallback="") != "1.1":
            raise SchedulerTooOld(method="select_move_destination", version="1.1")
        result: dict[str, Any] = await self.bus.call(
            ctx, TOPIC, "select_move_destination", {"spec": spec.to_dict()}, version="1.1")
        return Destination.from_dict(result)
