"""Client of compute hosts: one method per remote call, aimed at the instance's host.

Versions of the compute RPC API (compute/manager.py serves the newest; a
message of an older minor is served too):

- 1.0: the methods below, instances as InstancePayload 1.2, events as dicts.
- 1.1: external_instance_event's events are ExternalEvent models.
- 1.2: shelve_instance, shelve_offload_instance, unshelve_instance and
  rebuild_evacuated: calls the conductor's tasks (conductor/tasks/) wait for.

Each method is sent at the version that last changed it, or the newest the
`[upgrade_levels] compute` cap allows (models backported to what that version
carried), so hosts of the previous release keep working during an upgrade.
"""

from __future__ import annotations

from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute.payloads import ExternalEvent, instance_for
from novalet.network.model import Vif
from novalet.rpc import versions
from novalet.rpc.bus import Bus

VERSION = "1.2"


class UnsupportedRPCVersion(exceptions.Conflict):
    msg_fmt = ("%(method)s needs compute RPC %(version)s, above the [upgrade_levels] "
               "compute cap: upgrade the compute hosts and lift the cap first")


def topic_for(host: str) -> str:
    return f"compute.{host}"


class ComputeAPI:
    def __init__(self, bus: Bus, conf: config.Config) -> None:
        self.bus = bus
        self.caps = versions.Caps.from_conf(conf)  # [upgrade_levels] compute
        self.long_timeout: float = conf.get("DEFAULT", "long_rpc_timeout")

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

    # --- the conductor's move tasks (conductor/tasks/): calls, the task waits ---

    async def _move_call(self, ctx: RequestContext, host: str, method: str,
                         args: dict[str, Any]) -> Any:
        """A 1.2 call that may take as long as a disk upload or a spawn; refused
        while `[upgrade_levels] compute` holds hosts below 1.2 (they lack it)."""
        if self.caps.version("compute", "1.2", fallback="") != "1.2":
            raise UnsupportedRPCVersion(method=method, version="1.2")
        return await self.bus.call(ctx, topic_for(host), method, args, version="1.2",
                                   timeout=self.long_timeout)

    async def shelve_instance(self, ctx: RequestContext, host: str,
                              instance: dict[str, Any], image_id: str) -> int:
        """Power the guest off and upload its disk as `image_id`; the power state now."""
        state: int = await self._move_call(ctx, host, "shelve_instance", {
            "instance": self._instance(instance), "image_id": image_id})
        return state

    async def shelve_offload_instance(self, ctx: RequestContext, host: str,
                                      instance: dict[str, Any]) -> None:
        """Destroy the shelved guest and unplug its NICs."""
        await self._move_call(ctx, host, "shelve_offload_instance",
                              {"instance": self._instance(instance)})

    async def unshelve_instance(self, ctx: RequestContext, host: str,
                                instance: dict[str, Any]) -> None:
        """Start the shelved guest again: power it on if the host still has it, else
        spawn it from `instance`'s image (the shelved snapshot)."""
        await self._move_call(ctx, host, "unshelve_instance",
                              {"instance": self._instance(instance)})

    async def rebuild_evacuated(self, ctx: RequestContext, host: str,
                                instance: dict[str, Any], stopped: bool) -> None:
        """Spawn an instance evacuated to `host` from its image; powered off after if
        `stopped`."""
        await self._move_call(ctx, host, "rebuild_evacuated",
                              {"instance": self._instance(instance), "stopped": stopped})

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
