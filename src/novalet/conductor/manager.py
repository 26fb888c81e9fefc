"""The conductor: runs the build flow and is the compute hosts' only way to the database."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.periodic import Periodic
from novalet.common.timeutils import parse_isotime, utcnow
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute import usage_audit
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.instance_changes import InstanceChanges
from novalet.compute.payloads import (ComputeNodePayload, Destination, InstancePayload,
                                      Inventory, RequestSpec, instance_for)
from novalet.compute.states import TaskState, VmState
from novalet.conductor.reclaim import Reclaimer
from novalet.compute.recreate_requests import EvacuateRequest, UnshelveRequest
from novalet.conductor.recovery import BuildRecovery, LostBuilds
from novalet.conductor.tasks.evacuate import EvacuateTask
from novalet.conductor.tasks.shelve import ShelveTask
from novalet.conductor.tasks.unshelve import UnshelveTask
from novalet.image.api import ImageService
from novalet.console.tokens import Authorization, ConsoleAuth
from novalet.console.types import DISPLAY_OF
from novalet.conductor import rpcapi as conductor_rpcapi
from novalet.conductor.host_access import HostAccess
from novalet.conductor.move_flows import MoveFlows
from novalet.conductor.rpcapi import TOPIC
from novalet.db import (compute_nodes, instance_actions, instances, migrations_records,
                        placement, services)
from novalet.db.engine import Database
from novalet.network import state as network_state
from novalet.network.api import NetworkAPI
from novalet.rpc import bus as rpc_bus
from novalet.rpc.bus import Bus
from novalet.scheduler.rpcapi import SchedulerAPI

LOG = logging.getLogger(__name__)
_UNSET = "_unset"
# The evacuations whose source's guest is stale once the server is elsewhere.
_EVACUATED = ("accepted", "pre-migrating", "done")
BINARY = "nova-conductor"


def payload_of(instance: Any) -> dict[str, Any]:
    """An Instance row as the InstancePayload dict compute hosts receive."""
    return InstancePayload(
        uuid=instance.uuid, display_name=instance.display_name, hostname=instance.hostname,
        project_id=instance.project_id, user_id=instance.user_id,
        image_ref=instance.image_ref, flavor=FlavorPayload.from_dict(instance.flavor),
        vm_state=instance.vm_state,
        task_state=instance.task_state, power_state=instance.power_state,
        host=instance.host, node=instance.node,
        availability_zone=instance.availability_zone, key_data=instance.key_data,
        user_data=instance.user_data,
        metadata={m.key: m.value for m in instance.metadata_items},
        key_name=instance.key_name, config_drive=instance.config_drive,
        image=instance.system_metadata.get("image"),
        network_info=instance.system_metadata.get("network_info", [])).to_dict()


class ConductorManager(MoveFlows):  # the move methods: conductor/move_flows.py
    RPC_VERSION = conductor_rpcapi.VERSION

    def __init__(self, conf: config.Config, db: Database, bus: Bus,
                 network: NetworkAPI) -> None:
        self.conf = conf
        self.db = db
        self.bus = bus
        self.network = network
        self.host_access = HostAccess(db)
        # (host, binary) -> the RPC version the service last said it serves
        self.service_versions: dict[tuple[str, str], str | None] = {}
        self.scheduler = SchedulerAPI(bus, conf)
        self.compute = compute_rpcapi.ComputeAPI(bus, conf)
        self.periodic = Periodic()
        self.console_auth = ConsoleAuth(conf, db)
        self.recovery = BuildRecovery(conf, db, self._fail_abandoned,
                                      lambda: self.bus.connected_since)
        self.lost_builds = LostBuilds(db, self.build_instances)
        self.reclaimer = Reclaimer(conf, db, self.compute, network, payload_of)
        # The move tasks (conductor/tasks/). The shelved images live in the image store
        # of this controller's state_path, as the image API's do.
        images = ImageService(db, conf.state_path / "images", conf)
        self.shelving = ShelveTask(conf, db, self.compute, images, network)
        self.unshelving = UnshelveTask(conf, db, self.scheduler, self.compute, network, images)
        self.evacuating = EvacuateTask(conf, db, self.scheduler, self.compute, network)

    async def start(self) -> None:
        started_at = utcnow()
        await self.bus.serve(TOPIC, self)
        await self._heartbeat()
        self.periodic.every(self.conf.get("DEFAULT", "report_interval"), "heartbeat",
                            self._heartbeat)
        self.periodic.every(self.conf.get("conductor", "recovery_interval"),
                            "build recovery", self.recovery.run_once)
        self.periodic.every(self.reclaimer.interval, "reclaim soft-deleted servers",
                            self.reclaimer.run_once)
        self.lost_builds.start(self.bus, started_at)  # builds a crash took the cast of
        self.periodic.every(self.conf.get("DEFAULT", "shelved_poll_interval"),
                            "shelved offload", self.shelving.offload_expired)

    async def stop(self) -> None:
        await self.move_tasks.stop()
        await self.lost_builds.stop()
        await self.periodic.stop()

    async def _heartbeat(self) -> None:
        await services.heartbeat(self.db, self.conf.get("DEFAULT", "host"), BINARY, TOPIC)

    def _host_may_call(self, call: rpc_bus.CallInfo) -> bool:
        """The methods a compute host's bus user may call at all (rpc/bus.dispatch
        refuses the others): conductor/host_access.py's allow-list."""
        return self.host_access.allows(call.method)

    async def _authorize(self, ctx: RequestContext, args: dict[str, Any]) -> None:
        """Run by the bus before every method: a compute host gets only its own
        instances and node (conductor/host_access.py)."""
        call = rpc_bus.current_call()
        if call is not None:
            await self.host_access.check(call, args)

    async def _fail_abandoned(self, uuid: str, reason: str,
                              expected: list[str | None]) -> None:
        """BuildRecovery's verdict: ERROR (only if still as it found it), fault, free."""
        LOG.warning("Build of %s abandoned: %s", uuid, reason)
        await instances.set_fields(self.db, uuid, {"vm_state": VmState.ERROR,
                                                   "task_state": None},
                                   expected_task_state=expected)
        await instance_actions.add_fault(self.db, uuid, 500, reason, "", None)
        await placement.remove_allocations(self.db, uuid)

    # --- the build flow ---------------------------------------------------

    async def build_instances(self, ctx: RequestContext, spec: dict[str, Any]) -> None:
        """Schedule and start the spec's builds. A second delivery of the same cast
        (this conductor died mid-way, the broker handed it on) finishes what the
        first left: instances already placed go on to their host, the rest are
        scheduled; instances that moved on are left alone."""
        delay = self.conf.get("fake", "scheduling_delay")
        if delay > 0:  # tests only: builds stay scheduling that long
            await asyncio.sleep(delay)
        request = RequestSpec.from_dict(spec)
        waiting = await self._still_scheduling(request.instance_uuids)
        placed = [i for i in waiting if i.host]
        request.instance_uuids = [i.uuid for i in waiting if not i.host]
        for instance in placed:
            await self._send_to_host(ctx, Destination(
                instance_uuid=instance.uuid, host=instance.host or "", node=instance.node,
                availability_zone=instance.availability_zone))
        if not request.instance_uuids:
            return
        for uuid in request.instance_uuids:
            await instance_actions.event_start(self.db, ctx, uuid, "conductor_schedule_and_"
                                               "build_instances", self.conf.get("DEFAULT",
                                                                               "host"))
        try:
            destinations = await self.scheduler.select_destinations(ctx, request)
        except exceptions.NovaletError as exc:
            for uuid in request.instance_uuids:  # a timed-out call may have claimed
                await self._fail_build(ctx, uuid, exc)
            return
        for dest in destinations:
            await self._send_to_host(ctx, dest)

    async def _still_scheduling(self, uuids: list[str]) -> list[Any]:
        """The instances of `uuids` still waiting to be scheduled, in one query."""
        return await instances.list_instances(self.db, instances.ListQuery(
            uuids=uuids, task_states=[TaskState.SCHEDULING]))

    async def _send_to_host(self, ctx: RequestContext, dest: Destination) -> None:
        uuid = dest.instance_uuid
        try:
            instance = await instances.update(
                self.db, uuid, {"host": dest.host, "node": dest.node,
                                "availability_zone": dest.availability_zone},
                expected_task_state=["scheduling"])
        except exceptions.NotFound:
            LOG.info("Instance %s was deleted while scheduling", uuid)
            await placement.remove_allocations(self.db, uuid)
            return
        except exceptions.Conflict:
            LOG.info("Instance %s changed while scheduling; not building it", uuid)
            await placement.remove_allocations(self.db, uuid)
            return
        if "network_info" not in instance.system_metadata:  # not yet allocated
            try:
                vifs = await self._allocate_network(instance)
            except exceptions.NovaletError as exc:
                await self._fail_build(ctx, uuid, exc)
                return
            instance = await instances.update(self.db, uuid, {"system_metadata": {
                **instance.system_metadata, "network_info": vifs}})
        await instance_actions.event_finish(self.db, ctx, uuid, "conductor_schedule_and_"
                                            "build_instances", "Success")
        await self.compute.build_and_run_instance(ctx, dest.host, payload_of(instance))

    async def _allocate_network(self, instance: Any) -> list[dict[str, Any]]:
        """The instance's NICs on its new host, as the request asked for them."""
        requested = instance.system_metadata.get("requested_networks", "auto")
        if requested == "none":
            return []
        wanted = [(n["uuid"], n.get("fixed_ip")) for n in requested if n.get("uuid")] \
            if isinstance(requested, list) else None
        ports = [n["port"] for n in requested if n.get("port")] \
            if isinstance(requested, list) else []
        vifs = await self.network.allocate_for_instance(
            instance.uuid, instance.project_id, instance.host, instance.hostname,
            user_id=instance.user_id, requested_networks=wanted, requested_ports=ports)
        return [v.to_dict() for v in vifs]

    async def network_host_state(self, ctx: RequestContext, host: str) -> dict[str, Any]:
        """The desired networking of `host`, for its network service: a HostNetworkState
        model; callers before 1.6 get it backported (ingress rules only: their
        firewall reads every rule as ingress and lets all egress out)."""
        state = await network_state.host_state(self.db, self.conf, host)
        call = rpc_bus.current_call()
        if call is not None and rpc_bus.parse_version(call.version) < (1, 6):
            return network_state.backported_for_1_0(state)
        return state.to_dict()

    async def _fail_build(self, ctx: RequestContext, uuid: str, exc: Exception) -> None:
        LOG.warning("Build of %s failed: %s", uuid, exc)
        await placement.remove_allocations(self.db, uuid)
        await instance_actions.add_fault(self.db, uuid, getattr(exc, "code", 500), str(exc),
                                         "", None)
        try:
            await instances.update(self.db, uuid, {"vm_state": VmState.ERROR,
                                                   "task_state": None})
        except exceptions.NotFound:
            pass
        await instance_actions.event_finish(self.db, ctx, uuid, "conductor_schedule_and_"
                                            "build_instances", "Error", traceback=str(exc))

    # --- the move tasks (conductor/tasks/), cast by the API ----------------
    # Each runs on the TaskRunner, as the move flows' do: the cast handler returns at
    # once (a cast is acked only once handled, so tasks waiting on hosts inside the
    # handlers would fill the prefetch window), and stop() cancels them.

    async def shelve_instance(self, ctx: RequestContext, uuid: str, image_id: str) -> None:
        self.move_tasks.start(self.shelving.shelve(ctx, uuid, image_id),
                              f"shelve of {uuid}")

    async def shelve_offload_instance(self, ctx: RequestContext, uuid: str) -> None:
        self.move_tasks.start(self.shelving.offload(ctx, uuid), f"shelve offload of {uuid}")

    async def unshelve_instance(self, ctx: RequestContext, request: dict[str, Any]) -> None:
        """`request`: an UnshelveRequest."""
        unshelve = UnshelveRequest.from_dict(request)
        self.move_tasks.start(self.unshelving.unshelve(ctx, unshelve),
                              f"unshelve of {unshelve.instance_uuid}")

    async def evacuate_instance(self, ctx: RequestContext, request: dict[str, Any]) -> None:
        """`request`: an EvacuateRequest."""
        evacuate = EvacuateRequest.from_dict(request)
        self.move_tasks.start(self.evacuating.evacuate(ctx, evacuate),
                              f"evacuation of {evacuate.instance_uuid}")

    async def evacuated_instances(self, ctx: RequestContext, host: str) -> list[str]:
        """The instances evacuated off `host` that are no longer its: done (not yet
        cleaned up there), or still under way with the server already placed on its
        destination (Nova's accepted/pre-migrating): the guests `host` still has of
        them are stale, and would run twice."""
        moves = await migrations_records.evacuations_from(self.db, host, _EVACUATED)
        uuids = {m.instance_uuid for m in moves}
        if not uuids:
            return []
        rows = await instances.list_instances(self.db, instances.ListQuery(uuids=list(uuids)))
        return sorted(uuids - {r.uuid for r in rows if r.host == host})

    async def evacuation_cleaned(self, ctx: RequestContext, host: str, uuid: str) -> None:
        """`host` destroyed its copy of `uuid`: its done evacuations of it are
        completed (those under way are the task's to finish)."""
        for move in await migrations_records.evacuations_from(self.db, host, ("done",)):
            if move.instance_uuid == uuid:
                await migrations_records.update(self.db, move.uuid, {"status": "completed"})

    # --- database access for compute hosts --------------------------------

    async def instance_update(self, ctx: RequestContext, uuid: str, values: dict[str, Any],
                              expected_task_state: Any = _UNSET) -> None:
        """`values`: an InstanceChanges (1.3), or the untagged dict of its fields
        (1.0-1.2); a field it lacks or a value of the wrong kind is refused (400)."""
        changes = InstanceChanges.from_dict(values)
        expected = {} if expected_task_state == _UNSET else {
            "expected_task_state": expected_task_state}
        await instances.set_fields(self.db, uuid, changes.row_values(), **expected)

    async def record_power_change(self, ctx: RequestContext, uuid: str, action: str,
                                  event: str, values: dict[str, Any],
                                  expected_task_state: Any) -> None:
        """A change the host found rather than a user asked for: its own instance
        action (under ctx's fresh request id) with one event, then the update.
        `values`: as instance_update's."""
        changes = InstanceChanges.from_dict(values)
        await instance_actions.start(self.db, ctx, [uuid], action)
        await instance_actions.event_start(self.db, ctx, uuid, event, ctx.user_id)
        await instances.set_fields(self.db, uuid, changes.row_values(),
                                   expected_task_state=expected_task_state)
        await instance_actions.event_finish(self.db, ctx, uuid, event, "Success")

    async def instance_destroy(self, ctx: RequestContext, uuid: str) -> None:
        await instances.destroy(self.db, uuid)
        await self.network.deallocate_for_instance(uuid)

    async def instances_on_host(self, ctx: RequestContext, host: str) -> list[dict[str, Any]]:
        """The host's instances, as the caller's version of this API carries them (a
        host of the previous release gets the InstancePayload version it knows)."""
        rows = await instances.list_instances(self.db, instances.ListQuery(host=host))
        call = rpc_bus.current_call()
        version = call.version if call else self.RPC_VERSION
        return [instance_for("conductor", version, payload_of(r)) for r in rows]

    async def event_start(self, ctx: RequestContext, uuid: str, event: str,
                          host: str | None) -> None:
        await instance_actions.event_start(self.db, ctx, uuid, event, host)

    async def event_finish(self, ctx: RequestContext, uuid: str, event: str, result: str,
                           traceback: str | None = None) -> None:
        await instance_actions.event_finish(self.db, ctx, uuid, event, result, traceback)

    async def add_fault(self, ctx: RequestContext, uuid: str, code: int, message: str,
                        details: str, host: str | None) -> None:
        await instance_actions.add_fault(self.db, uuid, code, message, details, host)

    async def remove_allocations(self, ctx: RequestContext, uuid: str) -> None:
        await placement.remove_allocations(self.db, uuid)

    async def service_heartbeat(self, ctx: RequestContext, host: str, binary: str,
                                topic: str, rpc_version: str | None = None) -> None:
        """`rpc_version` (1.1): the RPC version the service serves; a sender of 1.0
        leaves it out, and is logged once as a service of the previous release."""
        await services.heartbeat(self.db, host, binary, topic)
        key = (host, binary)
        if key not in self.service_versions or self.service_versions[key] != rpc_version:
            self.service_versions[key] = rpc_version
            LOG.info("%s on %s serves RPC version %s", binary, host,
                     rpc_version or "1.0 (a release before versions were reported)")

    async def update_provider(self, ctx: RequestContext, uuid: str, name: str, host: str,
                              availability_zone: str, inventories: dict[str, Any]) -> None:
        """`inventories`: {class: Inventory model} (1.2) or {class: [total, reserved,
        ratio]} (1.0, 1.1)."""
        typed = {rc: Inventory.from_report(v) for rc, v in inventories.items()}
        await placement.upsert_provider(
            self.db, uuid, name, host, availability_zone,
            {rc: (i.total, i.reserved, i.allocation_ratio) for rc, i in typed.items()})

    async def compute_node_update(self, ctx: RequestContext, node: dict[str, Any]) -> None:
        """`node`: a ComputeNodePayload (1.1), or its untagged fields (1.0)."""
        facts = ComputeNodePayload.from_dict(node)
        await compute_nodes.upsert(
            self.db, facts.uuid, facts.host, facts.hypervisor_hostname,
            facts.hypervisor_type, int(facts.hypervisor_version or 0), facts.host_ip,
            facts.cpu_info or {}, capabilities=facts.capabilities or None)

    async def migration_update(self, ctx: RequestContext, instance_uuid: str, status: str,
                               from_statuses: list[str] | None = None) -> None:
        await migrations_records.set_status(
            self.db, instance_uuid, status,
            None if from_statuses is None else tuple(from_statuses))

    async def instance_usage_audit(self, ctx: RequestContext, host: str, begin: str,
                                   end: str) -> bool:
        return await usage_audit.run_for_host(self.db, host, parse_isotime(begin),
                                              parse_isotime(end))

    # --- console tokens, checked for the console proxies ------------------------

    async def console_check_token(self, ctx: RequestContext, token: str
                                  ) -> dict[str, Any] | None:
        auth = await self.console_auth.check(token)
        return await self._console_open(ctx, auth)

    async def console_check_vnc_auth(self, ctx: RequestContext, challenge: str,
                                     answer: str) -> dict[str, Any] | None:
        auth = await self.console_auth.check_vnc_auth(bytes.fromhex(challenge),
                                                      bytes.fromhex(answer))
        return await self._console_open(ctx, auth)

    async def _console_open(self, ctx: RequestContext, auth: Authorization | None
                            ) -> dict[str, Any] | None:
        """The authorization, if the compute host says the display is still there: an
        Authorization model (1.3), its fields untagged for a 1.0-1.2 caller."""
        if auth is None:
            return None
        try:
            listening = await self.compute.validate_console_port(
                ctx, auth.compute_host, auth.instance_uuid, DISPLAY_OF[auth.console_type],
                auth.target.port)
        except exceptions.NovaletError as exc:
            LOG.warning("Could not check the console of %s with %s: %s",
                        auth.instance_uuid, auth.compute_host, exc)
            return None
        if not listening:
            return None
        call = rpc_bus.current_call()
        old = call is not None and rpc_bus.parse_version(call.version) < (1, 3)
        return auth.to_dict(tagged=not old)
