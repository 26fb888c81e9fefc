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

    async def attach_interface(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                               vif: dict[str, Any]) -> None:
        await self.bus.call(ctx, topic_for(host), "attach_interface",
                            {"instance": instance, "vif": vif}, version=VERSION)

    async def detach_interface(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                               vif: dict[str, Any]) -> None:
        await self.bus.call(ctx, topic_for(host), "detach_interface",
                            {"instance": instance, "vif": vif}, version=VERSION)

    async def get_console_output(self, ctx: RequestContext, host: str, uuid: str) -> str:
        result: str = await self.bus.call(ctx, topic_for(host), "get_console_output",
                                          {"uuid": uuid}, version=VERSION)
        return result

    async def get_console(self, ctx: RequestContext, host: str, uuid: str,
                          kind: str) -> dict[str, Any]:
        """Where the guest's `kind` display (vnc, spice, serial) listens: a
        ConsoleTarget as a dict."""
        result: dict[str, Any] = await self.bus.call(
            ctx, topic_for(host), "get_console", {"uuid": uuid, "kind": kind},
            version=VERSION)
        return result

    async def validate_console_port(self, ctx: RequestContext, host: str, uuid: str,
                                    kind: str, port: int) -> bool:
        """Whether the guest's `kind` display listens on `port` now."""
        result: bool = await self.bus.call(
            ctx, topic_for(host), "validate_console_port",
            {"uuid": uuid, "kind": kind, "port": port}, version=VERSION)
        return result

    async def snapshot_instance(self, ctx: RequestContext, host: str,
                                instance: dict[str, Any], image_id: str) -> None:
        await self.bus.cast(ctx, topic_for(host), "snapshot_instance",
                            {"instance": instance, "image_id": image_id}, version=VERSION)

    async def rescue_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                              rescue_image: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "rescue_instance",
                            {"instance": instance, "rescue_image": rescue_image},
                            version=VERSION)

    async def unrescue_instance(self, ctx: RequestContext, host: str,
                                instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "unrescue_instance",
                            {"instance": instance}, version=VERSION)

    async def rebuild_instance(self, ctx: RequestContext, host: str,
                               instance: dict[str, Any]) -> None:
        """instance carries the new image already."""
        await self.bus.cast(ctx, topic_for(host), "rebuild_instance",
                            {"instance": instance}, version=VERSION)

    async def resize_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                              new_flavor: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "resize_instance",
                            {"instance": instance, "new_flavor": new_flavor}, version=VERSION)

    async def confirm_resize(self, ctx: RequestContext, host: str,
                             instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "confirm_resize",
                            {"instance": instance}, version=VERSION)

    async def revert_resize(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                            old_flavor: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "revert_resize",
                            {"instance": instance, "old_flavor": old_flavor}, version=VERSION)

    # --- admin API (os-hypervisors, os-server-external-events) ---------------

    async def get_host_uptime(self, ctx: RequestContext, host: str) -> str:
        result: str = await self.bus.call(ctx, topic_for(host), "get_host_uptime", {},
                                          version=VERSION)
        return result

    async def external_instance_event(self, ctx: RequestContext, host: str,
                                      events: list[dict[str, Any]]) -> None:
        """Events (name, server_uuid, tag, status) for instances on `host`."""
        await self.bus.cast(ctx, topic_for(host), "external_instance_event",
                            {"events": events}, version=VERSION)
