"""Client of the conductor: the build flow, and database access for compute hosts.

Versions of the conductor RPC API (conductor/manager.py serves the newest and
every older minor, so conductors are upgraded first and hosts after them):

- 1.0: the methods below with untyped dicts.
- 1.1: compute_node_update's node is a ComputeNodePayload; service_heartbeat
  carries the RPC version the sending service serves (`rpc_version`).
- 1.2: update_provider's inventories are Inventory models (before: lists
  [total, reserved, allocation_ratio]).
- 1.3: instance_update's and record_power_change's values are an InstanceChanges
  model (compute/instance_changes.py; before: an untagged dict of the same
  fields, the flavor a plain dict); instances_on_host answers InstancePayload
  1.3 (its flavor a FlavorPayload); console_check_token and
  console_check_vnc_auth answer an Authorization model (console/types.py;
  before: its fields untagged).
- 1.4: moves (conductor/move_flows.py): move_server (a MoveRequest), confirm_move,
  revert_move from the API; migration_progress (a ProgressReport) from the source
  host of a live migration.
- 1.5: the move tasks (conductor/tasks/): shelve_instance, shelve_offload_instance,
  unshelve_instance (an UnshelveRequest), evacuate_instance (an EvacuateRequest);
  for compute hosts, evacuated_instances and evacuation_cleaned (the guests
  evacuated from a host while it was down, for it to destroy).
- 1.6: network_host_state answers HostNetworkState 1.1 (rules with direction and
  ethertype, egress filtered); to older callers only its IPv4 ingress rules, as
  HostNetworkState 1.0.

A compute host's calls are checked against its bus identity (conductor/
host_access.py): it is served only its own instances and node.
"""

from __future__ import annotations

from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute.instance_changes import InstanceChanges
from novalet.compute.move_payloads import MoveRequest, ProgressReport
from novalet.compute.payloads import (
    ComputeNodePayload,
    InstancePayload,
    Inventory,
    RequestSpec,
)
from novalet.compute.recreate_requests import EvacuateRequest, UnshelveRequest
from novalet.console.types import Authorization
from novalet.rpc import versions
from novalet.rpc.bus import Bus, NotAuthorizedForHost

TOPIC = "conductor"
VERSION = "1.6"


class InstanceNotServed(NotAuthorizedForHost):
    """What a compute host is answered about an instance that is not its own (or
    not moving from or to it) and about one that does not exist alike, so a host
    cannot tell which uuids exist; to a host either means "not mine (any more)",
    as a deleted instance does (conductor/host_access.py raises it)."""


class UnsupportedConductorVersion(exceptions.Conflict):
    msg_fmt = ("This needs conductor RPC %(version)s, above the [upgrade_levels] "
               "conductor cap: lift the cap once every conductor is upgraded")


class ConductorAPI:
    def __init__(self, bus: Bus, conf: config.Config) -> None:
        self.bus = bus
        self.caps = versions.Caps.from_conf(conf)  # [upgrade_levels] conductor

    async def build_instances(self, ctx: RequestContext, spec: RequestSpec) -> None:
        """Schedule the spec's instances (already recorded) and start their builds."""
        await self.bus.cast(ctx, TOPIC, "build_instances", {"spec": spec.to_dict()},
                            version="1.0")

    # --- the move tasks (conductor/tasks/), cast by the API ----------------------

    def _moves_version(self) -> str:
        """1.5, or a refusal while `[upgrade_levels] conductor` holds it lower."""
        if self.caps.version("conductor", "1.5", fallback="") != "1.5":
            raise UnsupportedConductorVersion(version="1.5")
        return "1.5"

    async def shelve_instance(self, ctx: RequestContext, uuid: str, image_id: str) -> None:
        """Shelve the instance (task_state shelving) into the queued image `image_id`."""
        await self.bus.cast(ctx, TOPIC, "shelve_instance",
                            {"uuid": uuid, "image_id": image_id},
                            version=self._moves_version())

    async def shelve_offload_instance(self, ctx: RequestContext, uuid: str) -> None:
        """Offload the shelved instance (task_state shelving_offloading)."""
        await self.bus.cast(ctx, TOPIC, "shelve_offload_instance", {"uuid": uuid},
                            version=self._moves_version())

    async def unshelve_instance(self, ctx: RequestContext, request: UnshelveRequest) -> None:
        await self.bus.cast(ctx, TOPIC, "unshelve_instance", {"request": request.to_dict()},
                            version=self._moves_version())

    async def evacuate_instance(self, ctx: RequestContext, request: EvacuateRequest) -> None:
        await self.bus.cast(ctx, TOPIC, "evacuate_instance", {"request": request.to_dict()},
                            version=self._moves_version())

    def _flows_version(self) -> str:
        """1.4 (the moves of conductor/move_flows.py), or a refusal while
        `[upgrade_levels] conductor` holds it lower (a conductor without them)."""
        if self.caps.version("conductor", "1.4", fallback="") != "1.4":
            raise UnsupportedConductorVersion(version="1.4")
        return "1.4"

    async def evacuated_instances(self, ctx: RequestContext, host: str) -> list[str]:
        """Uuids of the instances evacuated from `host` whose guests it may still have
        (none from a conductor capped below 1.5, which does not know)."""
        if self.caps.version("conductor", "1.5", fallback="") != "1.5":
            return []
        result: list[str] = await self.bus.call(ctx, TOPIC, "evacuated_instances",
                                                {"host": host}, version="1.5")
        return result

    async def evacuation_cleaned(self, ctx: RequestContext, host: str, uuid: str) -> None:
        """`host` destroyed its copy of evacuated instance `uuid`: the evacuation's
        migration is completed."""
        await self.bus.call(ctx, TOPIC, "evacuation_cleaned", {"host": host, "uuid": uuid},
                            version="1.5")

    def _changes(self, values: InstanceChanges | dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The version to send at and `values` as an InstanceChanges (typed and
        checked here, as the conductor checks it), untagged for a conductor capped
        below 1.3 (which read a plain dict)."""
        changes = InstanceChanges.of(values)
        if self.caps.version("conductor", "1.3") == "1.3":
            return "1.3", changes.to_dict()
        return "1.0", changes.to_dict(tagged=False)

    async def instance_update(self, ctx: RequestContext, uuid: str,
                              values: InstanceChanges | dict[str, Any],
                              expected_task_state: Any = "_unset") -> None:
        """Compare-and-swap update of the instance record (see db.instances.update).
        `values`: InstanceChanges, or a dict of its fields (typed here)."""
        version, changes = self._changes(values)
        await self.bus.call(ctx, TOPIC, "instance_update", {
            "uuid": uuid, "values": changes, "expected_task_state": expected_task_state},
            version=version)

    async def record_power_change(self, ctx: RequestContext, uuid: str, action: str,
                                  event: str, values: InstanceChanges | dict[str, Any],
                                  expected_task_state: Any) -> None:
        version, changes = self._changes(values)
        await self.bus.call(ctx, TOPIC, "record_power_change", {
            "uuid": uuid, "action": action, "event": event, "values": changes,
            "expected_task_state": expected_task_state}, version=version)

    async def instance_destroy(self, ctx: RequestContext, uuid: str) -> None:
        await self.bus.call(ctx, TOPIC, "instance_destroy", {"uuid": uuid}, version="1.0")

    async def instances_on_host(self, ctx: RequestContext, host: str
                                ) -> list[InstancePayload]:
        rows = await self.bus.call(ctx, TOPIC, "instances_on_host", {"host": host},
                                   version=self.caps.version("conductor", "1.3"))
        return [InstancePayload.from_dict(r) for r in rows]

    async def event_start(self, ctx: RequestContext, uuid: str, event: str,
                          host: str | None) -> None:
        await self.bus.call(ctx, TOPIC, "event_start", {"uuid": uuid, "event": event,
                            "host": host}, version="1.0")

    async def event_finish(self, ctx: RequestContext, uuid: str, event: str, result: str,
                           traceback: str | None = None) -> None:
        await self.bus.call(ctx, TOPIC, "event_finish", {"uuid": uuid, "event": event,
                            "result": result, "traceback": traceback}, version="1.0")

    async def add_fault(self, ctx: RequestContext, uuid: str, code: int, message: str,
                        details: str, host: str | None) -> None:
        await self.bus.call(ctx, TOPIC, "add_fault", {"uuid": uuid, "code": code,
                            "message": message, "details": details, "host": host}, version="1.0")

    async def remove_allocations(self, ctx: RequestContext, uuid: str) -> None:
        await self.bus.call(ctx, TOPIC, "remove_allocations", {"uuid": uuid}, version="1.0")

    async def service_heartbeat(self, ctx: RequestContext, host: str, binary: str,
                                topic: str, rpc_version: str | None = None) -> None:
        """`rpc_version`: the version of the RPC API the sending service serves, so
        the conductor can tell hosts of an older release."""
        args: dict[str, Any] = {"host": host, "binary": binary, "topic": topic}
        version = self.caps.version("conductor", "1.1")
        if version == "1.1":
            args["rpc_version"] = rpc_version
        await self.bus.call(ctx, TOPIC, "service_heartbeat", args, version=version)

    async def update_provider(self, ctx: RequestContext, uuid: str, name: str, host: str,
                              availability_zone: str,
                              inventories: dict[str, Inventory]) -> None:
        """The node's resource provider and its inventories, for placement (as lists
        at 1.0 under an `[upgrade_levels] conductor` cap below 1.2)."""
        carried: dict[str, Any]
        if self.caps.version("conductor", "1.2") == "1.2":
            version, carried = "1.2", {rc: i.to_dict() for rc, i in inventories.items()}
        else:
            version, carried = "1.0", {rc: i.as_list() for rc, i in inventories.items()}
        await self.bus.call(ctx, TOPIC, "update_provider", {"uuid": uuid, "name": name,
                            "host": host, "availability_zone": availability_zone,
                            "inventories": carried}, version=version)

    async def compute_node_update(self, ctx: RequestContext,
                                  node: ComputeNodePayload) -> None:
        """A node's hypervisor facts for os-hypervisors."""
        version = self.caps.version("conductor", "1.1")
        await self.bus.call(ctx, TOPIC, "compute_node_update", {"node": node.to_dict()},
                            version=version)

    async def migration_update(self, ctx: RequestContext, instance_uuid: str, status: str,
                               from_statuses: list[str] | None = None) -> None:
        """Move the instance's newest migration record to `status` (only from one of
        `from_statuses`, when given)."""
        await self.bus.call(ctx, TOPIC, "migration_update", {
            "instance_uuid": instance_uuid, "status": status,
            "from_statuses": from_statuses}, version="1.0")

    async def console_check_token(self, ctx: RequestContext, token: str
                                  ) -> Authorization | None:
        """What a console token opens, or None when it opens nothing now."""
        result = await self.bus.call(ctx, TOPIC, "console_check_token", {"token": token},
                                     version=self.caps.version("conductor", "1.3"))
        return None if result is None else Authorization.from_dict(result)

    async def console_check_vnc_auth(self, ctx: RequestContext, challenge: bytes,
                                     answer: bytes) -> Authorization | None:
        """What the native VNC token answering `challenge` with `answer` opens."""
        result = await self.bus.call(
            ctx, TOPIC, "console_check_vnc_auth",
            {"challenge": challenge.hex(), "answer": answer.hex()},
            version=self.caps.version("conductor", "1.3"))
        return None if result is None else Authorization.from_dict(result)

    async def instance_usage_audit(self, ctx: RequestContext, host: str, begin: str,
                                   end: str) -> bool:
        """Audit the host's instances over [begin, end) (ISO times) unless done; True
        when it ran now."""
        ran: bool = await self.bus.call(ctx, TOPIC, "instance_usage_audit", {
            "host": host, "begin": begin, "end": end}, version="1.0")
        return ran

    # --- moves (1.4) -----------------------------------------------------------------

    async def move_server(self, ctx: RequestContext, request: MoveRequest,
                          wait_for_scheduling: bool = True) -> None:
        """Start a migration, resize or live migration; with `wait_for_scheduling`,
        return once a destination is claimed (NoValidHostForMove otherwise)."""
        await self.bus.call(ctx, TOPIC, "move_server", {
            "request": request.to_dict(), "wait_for_scheduling": wait_for_scheduling},
            version=self._flows_version())

    async def confirm_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        await self.bus.cast(ctx, TOPIC, "confirm_move", {"instance_uuid": instance_uuid},
                            version=self._flows_version())

    async def revert_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        await self.bus.cast(ctx, TOPIC, "revert_move", {"instance_uuid": instance_uuid},
                            version=self._flows_version())

    async def migration_progress(self, ctx: RequestContext, report: ProgressReport) -> None:
        """A live migration's progress, from its source host (not sent to a conductor
        capped below 1.4: it has nowhere to keep it)."""
        if self.caps.version("conductor", "1.4", fallback="") != "1.4":
            return
        await self.bus.call(ctx, TOPIC, "migration_progress", {"report": report.to_dict()},
                            version="1.4")
