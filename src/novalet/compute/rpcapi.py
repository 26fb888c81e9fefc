"""Client of compute hosts: one method per remote call, aimed at the instance's host.

Versions of the compute RPC API (compute/manager.py serves the newest; a
message of an older minor is served too):

- 1.0: the methods below, instances as InstancePayload 1.2, events as dicts.
- 1.1: external_instance_event's events are ExternalEvent models.
- 1.2: instances are InstancePayload 1.3 (the flavor a FlavorPayload part, the
  same keys as before); resize_instance's new_flavor and revert_resize's
  old_flavor are FlavorPayload models (before: plain dicts); get_console answers
  a ConsoleTarget model (before: its fields untagged).
  (resize_instance, confirm_resize and revert_resize are sent no more since 1.5's
  move steps replaced them; compute/manager.py still serves them for the 1.x major.)
- 1.3: soft_delete_instance, restore_instance, backup_instance, set_admin_password
  (a call) and trigger_crash_dump (compute/host_actions.py).
- 1.4: get_diagnostics (a Diagnostics model back).
- 1.5: the steps of moves the conductor orders (compute/moves.py), each taking a
  MoveOrder: prep_move, resize_in_place, confirm_in_place, revert_in_place, move_out, move_in,
  confirm_move_out, revert_move_in, revert_move_out, pre_live_migration,
  live_migrate_out, post_live_migration_at_destination,
  rollback_live_migration_at_destination; and live_migration_force_complete,
  live_migration_abort (by instance uuid). A host of 1.4 or older has none of them:
  while `[upgrade_levels] compute` is below 1.5 they are refused (HostTooOld, 409)
  without a message.
- 1.6: shelve_instance, shelve_offload_instance, unshelve_instance and
  rebuild_evacuated: calls the conductor's tasks (conductor/tasks/) wait for.
- 1.7: move steps carry MoveOrder 1.1 (its `target`), and the destination's
  prepare steps (prep_move of a cold move, pre_live_migration) answer a
  MoveTarget: where the source sends the guest. A host of 1.5 or 1.6 gets
  MoveOrder 1.0 and answers nothing (its drivers move guests without a path).

Each method is sent at the version that last changed it, or the newest the
`[upgrade_levels] compute` cap allows (models backported to what that version
carried), so hosts of the previous release keep working during an upgrade.
"""

from __future__ import annotations

from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute.diagnostics import DiagnosticsNotSupported
from novalet.compute.move_payloads import MoveOrder, MoveTarget
from novalet.compute.payloads import ExternalEvent, instance_for
from novalet.console.types import ConsoleTarget
from novalet.network.model import Vif
from novalet.rpc import versions
from novalet.rpc.bus import Bus

VERSION = "1.7"


class HostTooOld(exceptions.Conflict):
    msg_fmt = ("'%(method)s' needs compute RPC %(version)s, and [upgrade_levels] compute "
               "caps it lower (hosts of the previous release); upgrade the hosts first")


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
        return instance_for("compute", self._version(VERSION), instance)

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
                          kind: str) -> ConsoleTarget:
        """Where the guest's `kind` display (vnc, spice, serial) listens."""
        result = await self.bus.call(
            ctx, topic_for(host), "get_console", {"uuid": uuid, "kind": kind},
            version=self._version("1.2"))
        return ConsoleTarget.from_dict(result)

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

    # --- 1.3: soft delete, backup, password, crash dump (compute/host_actions.py) ---

    def _since(self, method: str, version: str) -> str:
        """`version` for a method that only exists since it; HostTooOld (409) while
        the upgrade cap is below it, instead of a message an old host can't serve."""
        if self.caps.version("compute", version, fallback="") != version:
            raise HostTooOld(method=method, version=version)
        return version

    async def soft_delete_instance(self, ctx: RequestContext, host: str,
                                   instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "soft_delete_instance",
                            {"instance": self._instance(instance)},
                            version=self._since("soft_delete_instance", "1.3"))

    async def restore_instance(self, ctx: RequestContext, host: str,
                               instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "restore_instance",
                            {"instance": self._instance(instance)},
                            version=self._since("restore_instance", "1.3"))

    async def backup_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                              image_id: str, backup_type: str, rotation: int) -> None:
        await self.bus.cast(ctx, topic_for(host), "backup_instance",
                            {"instance": self._instance(instance), "image_id": image_id,
                             "backup_type": backup_type, "rotation": rotation},
                            version=self._since("backup_instance", "1.3"))

    async def set_admin_password(self, ctx: RequestContext, host: str,
                                 instance: dict[str, Any], password: str) -> None:
        """A call, as in Nova: the API answers with the host's verdict."""
        await self.bus.call(ctx, topic_for(host), "set_admin_password",
                            {"instance": self._instance(instance), "password": password},
                            version=self._since("set_admin_password", "1.3"))

    async def trigger_crash_dump(self, ctx: RequestContext, host: str,
                                 instance: dict[str, Any]) -> None:
        await self.bus.cast(ctx, topic_for(host), "trigger_crash_dump",
                            {"instance": self._instance(instance)},
                            version=self._since("trigger_crash_dump", "1.3"))

    # --- the conductor's move tasks (conductor/tasks/): calls, the task waits ---

    async def _move_call(self, ctx: RequestContext, host: str, method: str,
                         args: dict[str, Any]) -> Any:
        """A 1.6 call that may take as long as a disk upload or a spawn; refused
        while `[upgrade_levels] compute` holds hosts below 1.6 (they lack it)."""
        return await self.bus.call(ctx, topic_for(host), method, args,
                                   version=self._since(method, "1.6"),
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

    async def get_diagnostics(self, ctx: RequestContext, host: str, uuid: str
                              ) -> dict[str, Any]:
        """The running guest's Diagnostics model as a dict. A host capped below 1.4
        (the previous release) has no such method: a 501 without asking it."""
        if self._version("1.4") != "1.4":
            raise DiagnosticsNotSupported(uuid=uuid, why=f"{host} runs a release without "
                                          "them")
        result: dict[str, Any] = await self.bus.call(ctx, topic_for(host), "get_diagnostics",
                                                     {"uuid": uuid}, version="1.4")
        return result

    async def external_instance_event(self, ctx: RequestContext, host: str,
                                      events: list[dict[str, Any]]) -> None:
        """Events (name, server_uuid, tag, status) for instances on `host`."""
        version = self._version("1.1")
        typed = [ExternalEvent.from_dict(e).to_dict() for e in events]
        await self.bus.cast(ctx, topic_for(host), "external_instance_event",
                            {"events": typed}, version=version)

    # --- moves (1.5): steps the conductor orders and waits for -------------------

    async def move_step(self, ctx: RequestContext, host: str, step: str, order: MoveOrder,
                        timeout: float | None = None) -> MoveTarget | None:
        """Run move step `step` (a method of compute/moves.MoveSteps) on `host`; what
        a destination's prepare step answered (checked), else None."""
        assert step in MOVE_STEPS, step
        version = self._since(step, "1.5")
        if self.caps.version("compute", "1.7", fallback="") == "1.7":
            version, sent = "1.7", order.to_dict()
        else:  # a host of 1.5 or 1.6: MoveOrder 1.0
            sent = order.to_dict("1.0")
        answer = await self.bus.call(ctx, topic_for(host), step, {"order": sent},
                                     version=version, timeout=timeout)
        if step not in TARGET_STEPS or not isinstance(answer, dict):
            return None
        return MoveTarget.from_dict(answer).check()

    async def live_migration_force_complete(self, ctx: RequestContext, host: str,
                                            uuid: str) -> None:
        await self.bus.call(ctx, topic_for(host), "live_migration_force_complete",
                            {"uuid": uuid},
                            version=self._since("live_migration_force_complete", "1.5"))

    async def live_migration_abort(self, ctx: RequestContext, host: str, uuid: str) -> None:
        await self.bus.call(ctx, topic_for(host), "live_migration_abort", {"uuid": uuid},
                            version=self._since("live_migration_abort", "1.5"))


MOVE_STEPS = frozenset({
    "prep_move", "resize_in_place", "confirm_in_place", "revert_in_place", "move_out", "move_in",
    "confirm_move_out", "revert_move_in", "revert_move_out", "pre_live_migration",
    "live_migrate_out", "post_live_migration_at_destination",
    "rollback_live_migration_at_destination"})
TARGET_STEPS = frozenset({"prep_move", "pre_live_migration"})
"""The destination's prepare steps: they answer a MoveTarget (since 1.7)."""
