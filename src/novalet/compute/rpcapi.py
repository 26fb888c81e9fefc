"""Client of compute hosts: one method per remote call, aimed at the instance's host.

Versions of the compute RPC API (compute/manager.py serves the newest; a
message of an older minor is served too):

- 1.0: the methods below, instances as InstancePayload 1.2, events as dicts.
- 1.1: external_instance_event's events are ExternalEvent models.
- 1.2: the steps of moves the conductor orders (compute/moves.py), each taking a
  MoveOrder: prep_move, resize_in_place, confirm_in_place, revert_in_place, move_out, move_in,
  confirm_move_out, revert_move_in, revert_move_out, pre_live_migration,
  live_migrate_out, post_live_migration_at_destination,
  rollback_live_migration_at_destination; and live_migration_force_complete,
  live_migration_abort (by instance uuid). A host of 1.1 has none of them: the
  conductor's moves refuse such hosts (they get NoSuchMethod).

Each method is sent at the version that last changed it, or the newest the
`[upgrade_levels] compute` cap allows (models backported to what that version
carried), so hosts of the previous release keep working during an upgrade.
"""

from __future__ import annotations

from typing import Any

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute.move_payloads import MoveOrder
from novalet.compute.payloads import ExternalEvent, instance_for
from novalet.network.model import Vif
from novalet.rpc import versions
from novalet.rpc.bus import Bus

VERSION = "1.2"


def topic_for(host: str) -> str:
    return f"compute.{host}"


class ComputeAPI:
    def __init__(self, bus: Bus, conf: config.Config) -> None:
        self.bus = bus
        self.caps = versions.Caps.from_conf(conf)  # [upgrade_levels] compute

    def _version(self, wanted: str) -> str:
        """`wanted`, or 1.0 when the upgrade cap is below it (every method exists at
        1.0; only the models differ)."""
        return self.caps.version("compute", wanted)

    def _instance(self, instance: dict[str, Any]) -> dict[str, Any]:
        """The instance as the version this host is sent carries it."""
        return instance_for(self._version(VERSION), instance)

    async def build_and_run_instance(self, ctx: RequestContext, host: str,
                                     instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "build_and_run_instance",
                            {"instance": self._instance(instance)}, version="1.0")

    async def terminate_instance(self, ctx: RequestContext, host: str,
                                 instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "terminate_instance",
                            {"instance": self._instance(instance)}, version="1.0")

    async def power_action(self, ctx: RequestContext, host: str, action: str,
                           instance: dict[str, Any]) -> None:
        """reboot, reboot_hard, stop, start, pause, unpause, suspend, resume."""
        await self.bus.cast(ctx, topic_for(host), "power_action",
                            {"action": action, "instance": self._instance(instance)}, version="1.0")

    async def attach_interface(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                               vif: Vif) -> None:
        """`vif` goes as a Vif model (a host of the previous release reads the fields it
        knows and ignores the tag)."""
        await self.bus.call(ctx, topic_for(host), "attach_interface",
                            {"instance": self._instance(instance), "vif": vif.to_dict()},
                            version="1.0")

    async def detach_interface(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                               vif: Vif) -> None:
        """`vif` goes as a Vif model (a host of the previous release reads the fields it
        knows and ignores the tag)."""
        await self.bus.call(ctx, topic_for(host), "detach_interface",
                            {"instance": self._instance(instance), "vif": vif.to_dict()},
                            version="1.0")

    async def get_console_output(self, ctx: RequestContext, host: str, uuid: str) -> str:
        result: str = await self.bus.call(ctx, topic_for(host), "get_console_output",
                                          {"uuid": uuid}, version="1.0")
        return result

    async def get_console(self, ctx: RequestContext, host: str, uuid: str,
                          kind: str) -> dict[str, Any]:
        """Where the guest's `kind` display (vnc, spice, serial) listens: a
        ConsoleTarget as a dict."""
        result: dict[str, Any] = await self.bus.call(
            ctx, topic_for(host), "get_console", {"uuid": uuid, "kind": kind},
            version="1.0")
        return result

    async def validate_console_port(self, ctx: RequestContext, host: str, uuid: str,
                                    kind: str, port: int) -> bool:
        """Whether the guest's `kind` display listens on `port` now."""
        result: bool = await self.bus.call(
            ctx, topic_for(host), "validate_console_port",
            {"uuid": uuid, "kind": kind, "port": port}, version="1.0")
        return result

    async def snapshot_instance(self, ctx: RequestContext, host: str,
                                instance: dict[str, Any], image_id: str) -> None:
        await self.bus.cast(ctx, topic_for(host), "snapshot_instance",
                            {"instance": self._instance(instance), "image_id": image_id}, version="1.0")

    async def rescue_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                              rescue_image: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "rescue_instance",
                            {"instance": self._instance(instance), "rescue_image": rescue_image},
                            version="1.0")

    async def unrescue_instance(self, ctx: RequestContext, host: str,
                                instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "unrescue_instance",
                            {"instance": self._instance(instance)}, version="1.0")

    async def rebuild_instance(self, ctx: RequestContext, host: str,
                               instance: dict[str, Any]) -> None:
        """instance carries the new image already."""
        await self.bus.cast(ctx, topic_for(host), "rebuild_instance",
                            {"instance": self._instance(instance)}, version="1.0")

    async def resize_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                              new_flavor: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "resize_instance",
                            {"instance": self._instance(instance), "new_flavor": new_flavor}, version="1.0")

    async def confirm_resize(self, ctx: RequestContext, host: str,
                             instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "confirm_resize",
                            {"instance": self._instance(instance)}, version="1.0")

    async def revert_resize(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                            old_flavor: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "revert_resize",
                            {"instance": self._instance(instance), "old_flavor": old_flavor}, version="1.0")

    # --- admin API (os-hypervisors, os-server-external-events) ---------------

    async def get_host_uptime(self, ctx: RequestContext, host: str) -> str:
        result: str = await self.bus.call(ctx, topic_for(host), "get_host_uptime", {},
                                          version="1.0")
        return result

    async def external_instance_event(self, ctx: RequestContext, host: str,
                                      events: list[dict[str, Any]]) -> None:
        """Events (name, server_uuid, tag, status) for instances on `host`."""
        version = self._version("1.1")
        typed = [ExternalEvent.from_dict(e).to_dict() for e in events]
        await self.bus.cast(ctx, topic_for(host), "external_instance_event",
                            {"events": typed}, version=version)

    # --- moves (1.2): steps the conductor orders and waits for -------------------

    async def move_step(self, ctx: RequestContext, host: str, step: str, order: MoveOrder,
                        timeout: float | None = None) -> None:
        """Run move step `step` (a method of compute/moves.MoveSteps) on `host`."""
        assert step in MOVE_STEPS, step
        await self.bus.call(ctx, topic_for(host), step, {"order": order.to_dict()},
                            version="1.2", timeout=timeout)

    async def live_migration_force_complete(self, ctx: RequestContext, host: str,
                                            uuid: str) -> None:
        await self.bus.call(ctx, topic_for(host), "live_migration_force_complete",
                            {"uuid": uuid}, version="1.2")

    async def live_migration_abort(self, ctx: RequestContext, host: str, uuid: str) -> None:
        await self.bus.call(ctx, topic_for(host), "live_migration_abort", {"uuid": uuid},
                            version="1.2")


MOVE_STEPS = frozenset({
    "prep_move", "resize_in_place", "confirm_in_place", "revert_in_place", "move_out", "move_in",
    "confirm_move_out", "revert_move_in", "revert_move_out", "pre_live_migration",
    "live_migrate_out", "post_live_migration_at_destination",
    "rollback_live_migration_at_destination"})
