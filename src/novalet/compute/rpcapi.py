"""Client of compute hosts: one method per remote call, aimed at the instance's host."""

from __future__ import annotations

from typing import Any

from novalet.common.context import RequestContext
from novalet.rpc.bus import Bus

VERSION = "1.0"


def topic_for(host: str) -> str:
    return f"compute.{host}"


class ComputeAPI:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def build_and_run_instance(self, ctx: RequestContext, host: str,
                                     instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "build_and_run_instance",
                            {"instance": instance}, version=VERSION)

    async def terminate_instance(self, ctx: RequestContext, host: str,
                                 instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "terminate_instance",
                            {"instance": instance}, version=VERSION)

    async def power_action(self, ctx: RequestContext, host: str, action: str,
                           instance: dict[str, Any]) -> None:
        """reboot, reboot_hard, stop, start, pause, unpause, suspend, resume."""
        await self.bus.cast(ctx, topic_for(host), "power_action",
                            {"action": action, "instance": instance}, version=VERSION)

    async def get_console_output(self, ctx: RequestContext, host: str, uuid: str) -> str:
        result: str = await self.bus.call(ctx, topic_for(host), "get_console_output",
                                          {"uuid": uuid}, version=VERSION)
        return result
