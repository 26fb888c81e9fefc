"""The compute service of one host: drives the virt driver, reports, never touches the DB."""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
import uuid as uuidlib
from typing import Any
from collections.abc import Awaitable, Callable

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.periodic import Periodic
from novalet.common.timeutils import utcnow
from novalet.compute.audit_period import last_completed
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.host_actions import HostActions
from novalet.compute.diagnostics import GuestNotRunning
from novalet.compute.snapshot_upload import upload_snapshot
from novalet.compute.payloads import (
    ComputeNodePayload,
    ExternalEvent,
    InstancePayload,
    Inventory,
)
from novalet.compute.moves import MoveSteps
from novalet.compute.power_sync import PowerStateSync
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.rpcapi import topic_for
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.compute.vif_events import (VIF_PLUGGED, EventsCancelled, InstanceEvents,
                                        VirtualInterfaceCreateException)
from novalet.conductor.rpcapi import ConductorAPI, InstanceNotServed
from novalet.network.model import Vif
from novalet.network.rpcapi import NetworkRPC, PlugReport, VifPlugger
from novalet.rpc import bus
from novalet.rpc.bus import Bus
from novalet.rpc.identity import user_for_host
from novalet.virt.driver import ComputeDriver, ImageFetcher

LOG = logging.getLogger(__name__)
BINARY = "nova-compute"
# What the conductor answers about an instance deleted (or moved away) meanwhile:
# a service's NotFound, or, to this host's bus user, the refusal it gives for
# unknown and other hosts' instances alike.
GONE = (exceptions.NotFound, InstanceNotServed)

# action -> (driver method, vm_state after, power_state after)
POWER_ACTIONS: dict[str, tuple[str, VmState, PowerState]] = {
    "reboot": ("reboot", VmState.ACTIVE, PowerState.RUNNING),
    "reboot_hard": ("reboot", VmState.ACTIVE, PowerState.RUNNING),
    "stop": ("power_off", VmState.STOPPED, PowerState.SHUTDOWN),
    "start": ("power_on", VmState.ACTIVE, PowerState.RUNNING),
    "pause": ("pause", VmState.PAUSED, PowerState.PAUSED),
    "unpause": ("unpause", VmState.ACTIVE, PowerState.RUNNING),
    "suspend": ("suspend", VmState.SUSPENDED, PowerState.SUSPENDED),
    "resume": ("resume", VmState.ACTIVE, PowerState.RUNNING),
}
EVENT_NAMES = {"reboot": "compute_reboot_instance", "reboot_hard": "compute_reboot_instance",
               "stop": "compute_stop_instance", "start": "compute_start_instance",
               "pause": "compute_pause_instance", "unpause": "compute_unpause_instance",
               "suspend": "compute_suspend_instance", "resume": "compute_resume_instance"}


def _vifs(inst: InstancePayload) -> list[Vif]:
    return list(inst.network_info)


def _after_resize(inst: InstancePayload) -> tuple[VmState, PowerState]:
    """The states a confirmed or reverted resize leaves: the resized server kept the
    power state it had before (a stopped one stayed off), so off means STOPPED."""
    if inst.power_state == PowerState.SHUTDOWN:
        return VmState.STOPPED, PowerState.SHUTDOWN
    return VmState.ACTIVE, PowerState.RUNNING


def provider_uuid(hypervisor_hostname: str) -> str:
    """A stable resource provider id for a node name."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"novalet-node.{hypervisor_hostname}"))


class ComputeManager(HostActions, MoveSteps):  # moves' steps: compute/moves.py
    RPC_VERSION = compute_rpcapi.VERSION

    def __init__(self, conf: config.Config, bus: Bus, driver: ComputeDriver,
                 images: ImageFetcher, vifs: VifPlugger) -> None:
        self.conf = conf
        self.host: str = conf.get("DEFAULT", "host")
        self.bus = bus
        self.driver = driver
        self.images = images
        # this host's network service plugs guests' devices (never this process)
        self.vifs = vifs
        self.network = NetworkRPC(bus)
        # Calls to the conductor go as this host's bus user (over RabbitMQ, the
        # transport_url's user: compute-<host>); it serves us only our instances.
        self.conductor = ConductorAPI(bus.as_user(user_for_host(self.host)), conf)
        self.power_sync = PowerStateSync(self.host, driver, self.conductor)
        self.periodic = Periodic()
        self._building: set[str] = set()  # uuids whose build runs in this process
        self.instance_events = InstanceEvents()  # what builds wait for (network-vif-plugged)

    async def start(self) -> None:
        await self.driver.init_host(self.host)
        ctx = RequestContext.admin()
        await self.report_resources(ctx)
        await self.conductor.service_heartbeat(ctx, self.host, BINARY, topic_for(self.host),
                                               self.RPC_VERSION)
        stale = await self._clean_evacuated(ctx)  # before recover: not ours any more
        # before serving: builds cut short are failed first
        stale += await self.power_sync.recover()
        if stale:  # the host's network service drops the taps no QEMU holds now
            await self.network.refresh({self.host})
        await self.bus.serve(topic_for(self.host), self)
        self._every("report_interval", self._heartbeat)
        self._every("sync_power_state_interval", self.power_sync.sync_once)
        self._every("image_cache_manager_interval", self.driver.manage_image_cache)
        if self.conf.get("DEFAULT", "instance_usage_audit"):
            self._every("instance_usage_audit_interval", self._instance_usage_audit)

    def _host_may_call(self, call: bus.CallInfo) -> bool:
        """Requests come from the cloud's services (API, conductor), which rpc/bus
        serves; of compute hosts' bus users only this host's own is served, so a
        compromised host publishing into this host's queue is refused (RabbitMQ
        vouches for user-id; a message without one is refused by the bus)."""
        return call.host == self.host

    async def stop(self) -> None:
        await self.periodic.stop()
        await self.driver.cleanup_host()

    def _every(self, option: str, job: Callable[[], Awaitable[Any]]) -> None:
        """Run `job` every [DEFAULT] `option` seconds (0: never) until stop()."""
        self.periodic.every(self.conf.get("DEFAULT", option), option, job)

    async def _instance_usage_audit(self) -> None:
        """Once the audit period is over, have this host's instances in it counted
        (the conductor skips a period already done)."""
        begin, end = last_completed(self.conf.get("DEFAULT", "instance_usage_audit_period"),
                                    utcnow())
        if await self.conductor.instance_usage_audit(RequestContext.admin(), self.host,
                                                     begin.isoformat(), end.isoformat()):
            LOG.info("Instance usage audit done for %s to %s", begin, end)

    async def _heartbeat(self) -> None:
        await self.conductor.service_heartbeat(RequestContext.admin(), self.host, BINARY,
                                               topic_for(self.host), self.RPC_VERSION)

    async def report_resources(self, ctx: RequestContext) -> None:
        res = await self.driver.get_available_resource()
        conf = self.conf
        inventories = {
            "VCPU": Inventory(res.vcpus, 0, conf.get("scheduler", "cpu_allocation_ratio")),
            "MEMORY_MB": Inventory(res.memory_mb, 0,
                                   conf.get("scheduler", "ram_allocation_ratio")),
            "DISK_GB": Inventory(res.local_gb, 0,
                                 conf.get("scheduler", "disk_allocation_ratio"))}
        await self.conductor.update_provider(
            ctx, provider_uuid(res.hypervisor_hostname), res.hypervisor_hostname, self.host,
            conf.get("DEFAULT", "default_availability_zone"), inventories)
        await self.conductor.compute_node_update(ctx, ComputeNodePayload(
            uuid=provider_uuid(res.hypervisor_hostname), host=self.host,
            hypervisor_hostname=res.hypervisor_hostname,
            hypervisor_type=res.hypervisor_type,
            hypervisor_version=int(res.hypervisor_version or 0), host_ip=None,
            cpu_info=res.cpu_info, capabilities=self.driver.capabilities.to_dict()))

    # --- build and delete -------------------------------------------------

    # Acknowledged when taken: a build waits (up to vif_plugging_timeout) for the
    # network-vif-plugged casts on this host's queue, which deliveries held for
    # the whole build would block (the bus's prefetch: 100 waiting builds stop
    # the queue). A redelivery would gain nothing: a restarted host fails the
    # builds it was running before it serves (power_sync.recover), and a
    # redelivered cast then meets a conflict.
    @bus.ack_on_receipt
    async def build_and_run_instance(self, ctx: RequestContext,
                                     instance: dict[str, Any]) -> None:
        inst = InstancePayload.from_dict(instance)
        if inst.uuid in self._building:  # a second delivery while the first runs
            LOG.info("Instance %s is being built here already; ignoring", inst.uuid)
            return
        self._building.add(inst.uuid)
        try:
            await self._build(ctx, inst)
        finally:
            self._building.discard(inst.uuid)

    async def _build(self, ctx: RequestContext, inst: InstancePayload) -> None:
        event = "compute_build_and_run_instance"
        started = time.monotonic()
        try:
            await self.conductor.event_start(ctx, inst.uuid, event, self.host)
            # SPAWNING is accepted too: our own call may have been done twice (its
            # reply lost to a broker restart); nobody else builds it (see above, and
            # recover() runs before this host serves).
            await self.conductor.instance_update(
                ctx, inst.uuid, {"task_state": TaskState.SPAWNING},
                expected_task_state=[TaskState.SCHEDULING, TaskState.SPAWNING])
        except GONE:
            LOG.info("Instance %s deleted before it was built", inst.uuid)
            return
        except exceptions.Conflict:
            # A second delivery of this cast: the first one is building (or built) it.
            LOG.info("Instance %s is not waiting to be built here; ignoring", inst.uuid)
            return
        except Exception as exc:  # e.g. the conductor died holding our call
            await self._fail_build(ctx, inst, event, exc)
            return
        try:
            await self._plug_and_wait(inst)
            await self.driver.spawn(inst.guest_spec())
        except EventsCancelled as exc:  # deleted meanwhile: terminate cleans up
            LOG.info("Not starting %s: %s", inst.uuid, exc)
            await self._cancelled_build(ctx, inst, event)
            return
        except Exception as exc:
            await self._fail_build(ctx, inst, event, exc)
            return
        try:
            await self._mark_active(ctx, inst)
        except (*GONE, exceptions.Conflict):
            LOG.info("Instance %s deleted while spawning; destroying the guest", inst.uuid)
            await self.driver.destroy(inst.uuid)
            return
        LOG.info("Spawned instance %s in %.2fs", inst.uuid, time.monotonic() - started)
        if inst.network_info:  # the firewall lets the new guest's traffic through now
            await self.network.refresh({self.host})
        await self.conductor.event_finish(ctx, inst.uuid, event, "Success")

    async def _cancelled_build(self, ctx: RequestContext, inst: InstancePayload,
                               event: str) -> None:
        """A delete ended the plug wait. terminate_instance unplugs at once, maybe
        while our plug was still in flight: unplug again now that it returned
        (unplugging is idempotent), and close the build's action event."""
        try:
            await self._unplug(inst)
        except Exception:
            LOG.exception("Unplugging the ports of deleted instance %s failed", inst.uuid)
        try:
            await self.conductor.event_finish(ctx, inst.uuid, event, "Error",
                                              traceback=traceback.format_exc())
        except GONE:
            pass  # the delete finished first: no record left to close

    async def _plug_and_wait(self, inst: InstancePayload) -> None:
        """Have the guest's NICs plugged and, as Nova does, wait for the network
        service to report each one plugged (network-vif-plugged, tag the port id) for
        up to [DEFAULT] vif_plugging_timeout seconds (0: no wait; nor when the host's
        network service does not report plugs). The wait is registered before the
        plug, so a report that comes before the plug call returns is kept. What does
        not come fails the build (VirtualInterfaceCreateException, naming the port),
        unless vif_plugging_is_fatal is false."""
        vifs = _vifs(inst)
        timeout: float = self.conf.get("DEFAULT", "vif_plugging_timeout")
        started = time.monotonic()
        if not vifs or timeout <= 0 or not self.vifs.reports_plugged:
            await self.vifs.plug(vifs)
            if vifs:
                LOG.info("Plugged ports of %s in %.4fs (no wait)", inst.uuid,
                         time.monotonic() - started)
            return
        with self.instance_events.prepare(inst.uuid, [(VIF_PLUGGED, v.id) for v in vifs]) \
                as waiter:
            await self.vifs.plug(vifs, report=PlugReport(inst.uuid, self.host))
            try:
                await waiter.wait(timeout)
                LOG.info("Plugged ports of %s in %.4fs (reported: network-vif-plugged)",
                         inst.uuid, time.monotonic() - started)
            except VirtualInterfaceCreateException as exc:
                if self.conf.get("DEFAULT", "vif_plugging_is_fatal"):
                    raise
                LOG.warning("%s; starting the guest anyway (vif_plugging_is_fatal is "
                            "false)", exc)

    async def _mark_active(self, ctx: RequestContext, inst: InstancePayload) -> None:
        """SPAWNING -> ACTIVE. A call that timed out may have been done or lost (the
        conductor died holding it): the retry accepts either. A call published again
        across a broker restart may also run twice, the second run meeting the first's
        ACTIVE as a conflict: that is success too, not a delete."""
        values = {"vm_state": VmState.ACTIVE, "task_state": None,
                  "power_state": PowerState.RUNNING, "launched_at": utcnow().isoformat()}
        try:
            try:
                await self.conductor.instance_update(ctx, inst.uuid, values,
                                                     expected_task_state=[TaskState.SPAWNING])
            except bus.MessagingTimeout:
                LOG.warning("Marking %s ACTIVE timed out; trying again", inst.uuid)
                await self.conductor.instance_update(
                    ctx, inst.uuid, values, expected_task_state=[TaskState.SPAWNING, None])
        except exceptions.Conflict:
            if not await self._is_active_here(ctx, inst.uuid):
                raise
            LOG.info("Instance %s was marked ACTIVE by an earlier run of the same call",
                     inst.uuid)

    async def _is_active_here(self, ctx: RequestContext, uuid: str) -> bool:
        for other in await self.conductor.instances_on_host(ctx, self.host):
            if other.uuid == uuid:
                return other.vm_state == VmState.ACTIVE and other.task_state is None
        return False

    async def _fail_build(self, ctx: RequestContext, inst: InstancePayload, event: str,
                          exc: Exception) -> None:
        LOG.warning("Failed to build %s: %s", inst.uuid, exc)
        await self.driver.destroy(inst.uuid)
        await self._unplug(inst)
        await self.conductor.add_fault(ctx, inst.uuid, getattr(exc, "code", 500), str(exc),
                                       traceback.format_exc(), self.host)
        await self.conductor.remove_allocations(ctx, inst.uuid)
        try:
            await self.conductor.instance_update(ctx, inst.uuid, {
                "vm_state": VmState.ERROR, "task_state": None,
                "power_state": PowerState.NOSTATE})
        except GONE:
            pass
        await self.conductor.event_finish(ctx, inst.uuid, event, "Error",
                                          traceback=traceback.format_exc())

    async def _unplug(self, inst: InstancePayload) -> None:
        await self.vifs.unplug(_vifs(inst))

    async def terminate_instance(self, ctx: RequestContext, instance: dict[str, Any]) -> None:
        inst = InstancePayload.from_dict(instance)
        # a build waiting for its ports stops waiting (and does not start the guest)
        self.instance_events.cancel(inst.uuid, "the instance is being deleted")
        await self.conductor.event_start(ctx, inst.uuid, "compute_terminate_instance",
                                         self.host)
        await self.driver.destroy(inst.uuid)
        await self._unplug(inst)
        await self.conductor.event_finish(ctx, inst.uuid, "compute_terminate_instance",
                                          "Success")
        await self.conductor.instance_destroy(ctx, inst.uuid)

    # --- power actions ----------------------------------------------------

    async def power_action(self, ctx: RequestContext, action: str,
                           instance: dict[str, Any]) -> None:
        inst = InstancePayload.from_dict(instance)
        method, vm_state, power_state = POWER_ACTIONS[action]
        call: Callable[..., Awaitable[None]] = getattr(self.driver, method)
        args: tuple[Any, ...] = (inst.uuid,)
        if method == "reboot":
            args = (inst.uuid, action == "reboot_hard")
        elif method == "power_off":  # ACPI first, forced after the timeout, as Nova does
            args = (inst.uuid, self.conf.get("DEFAULT", "shutdown_timeout"))
        await self._tracked(ctx, inst, EVENT_NAMES[action], lambda: call(*args), {
            "vm_state": vm_state, "power_state": power_state, "task_state": None})

    async def _tracked(self, ctx: RequestContext, inst: InstancePayload, event: str,
                       work: Callable[[], Awaitable[None]], values: dict[str, Any]) -> bool:
        """Run driver work inside an action event; on failure, record a fault and put
        task_state back so the instance isn't stuck. The guest's taps are plugged
        first (idempotent): work that starts qemu again needs them, and after a host
        reboot they are gone."""
        await self.conductor.event_start(ctx, inst.uuid, event, self.host)
        try:
            await self.vifs.plug(_vifs(inst))
            await work()
        except Exception as exc:
            LOG.warning("%s of %s failed: %s", event, inst.uuid, exc)
            await self.conductor.add_fault(ctx, inst.uuid, getattr(exc, "code", 500),
                                           str(exc), traceback.format_exc(), self.host)
            await self.conductor.instance_update(ctx, inst.uuid, {"task_state": None})
            await self.conductor.event_finish(ctx, inst.uuid, event, "Error",
                                              traceback=traceback.format_exc())
            return False
        await self.conductor.instance_update(ctx, inst.uuid, values,
                                             expected_task_state=[inst.task_state])
        await self.conductor.event_finish(ctx, inst.uuid, event, "Success")
        return True

    async def get_console_output(self, ctx: RequestContext, uuid: str) -> str:
        return await self.driver.get_console_output(uuid)

    async def get_console(self, ctx: RequestContext, uuid: str, kind: str) -> dict[str, Any]:
        """A ConsoleTarget model (1.2); its fields untagged for a 1.0-1.1 caller."""
        call = bus.current_call()
        old = call is not None and bus.parse_version(call.version) < (1, 2)
        return (await self.driver.get_console(uuid, kind)).to_dict(tagged=not old)

    async def validate_console_port(self, ctx: RequestContext, uuid: str, kind: str,
                                    port: int) -> bool:
        """Whether the display a token names is still the guest's (a restarted guest
        may listen elsewhere, and another guest where it was)."""
        try:
            return (await self.driver.get_console(uuid, kind)).port == port
        except exceptions.NovaletError as exc:
            LOG.info("Console %s of %s is not open: %s", kind, uuid, exc)
            return False

    # --- interfaces (the API waits for these) --------------------------------

    async def attach_interface(self, ctx: RequestContext, instance: dict[str, Any],
                               vif: dict[str, Any]) -> None:
        """Plug the new NIC's tap, then hot-plug it into the guest (a stopped guest
        gets it at its next start, from its network_info). `vif`: a Vif model."""
        nic = Vif.from_dict(vif)
        await self.vifs.plug([nic])
        try:
            await self.driver.attach_interface(instance["uuid"], nic)
        except Exception:
            await self.vifs.unplug([nic])
            raise
        LOG.info("Attached interface %s (%s) to %s", nic.id, nic.fixed_ip, instance["uuid"])

    async def detach_interface(self, ctx: RequestContext, instance: dict[str, Any],
                               vif: dict[str, Any]) -> None:
        nic = Vif.from_dict(vif)
        await self.driver.detach_interface(instance["uuid"], nic)
        await self.vifs.unplug([nic])
        LOG.info("Detached interface %s from %s", nic.id, instance["uuid"])

    # --- image, rescue, rebuild, resize ------------------------------------

    async def snapshot_instance(self, ctx: RequestContext, instance: dict[str, Any],
                                image_id: str) -> None:
        inst = InstancePayload.from_dict(instance)

        await self._tracked(ctx, inst, "compute_snapshot_instance",
                            lambda: upload_snapshot(self.driver, self.images, inst.uuid,
                                                    image_id), {"task_state": None})

    async def rescue_instance(self, ctx: RequestContext, instance: dict[str, Any],
                              rescue_image: dict[str, Any]) -> None:
        inst = InstancePayload.from_dict(instance)
        rescue = dataclasses.replace(inst, image=rescue_image, image_ref=rescue_image["id"])
        await self._tracked(ctx, inst, "compute_rescue_instance",
                            lambda: self.driver.rescue(inst.uuid, rescue.guest_spec()),
                            {"vm_state": VmState.RESCUED, "power_state": PowerState.RUNNING,
                             "task_state": None})

    async def unrescue_instance(self, ctx: RequestContext, instance: dict[str, Any]) -> None:
        inst = InstancePayload.from_dict(instance)
        await self._tracked(ctx, inst, "compute_unrescue_instance",
                            lambda: self.driver.unrescue(inst.uuid),
                            {"vm_state": VmState.ACTIVE, "power_state": PowerState.RUNNING,
                             "task_state": None})

    async def rebuild_instance(self, ctx: RequestContext, instance: dict[str, Any]) -> None:
        """As Nova: a server rebuilt while stopped is left stopped (never booted)."""
        inst = InstancePayload.from_dict(instance)
        stopped = inst.vm_state == VmState.STOPPED
        await self._tracked(ctx, inst, "compute_rebuild_instance",
                            lambda: self.driver.rebuild(inst.guest_spec(), not stopped),
                            {"vm_state": VmState.STOPPED if stopped else VmState.ACTIVE,
                             "power_state": PowerState.SHUTDOWN if stopped
                             else PowerState.RUNNING,
                             "task_state": None, "launched_at": utcnow().isoformat()})

    # resize_instance, confirm_resize and revert_resize: this release sends none of
    # them (moves go by compute RPC 1.5's steps, compute/moves.py), but every 1.x
    # minor is served. Controllers upgrade before compute hosts (docs/multi-host.md),
    # yet a cast a previous-release API queued on this host's durable queue before
    # its upgrade is delivered after this host's. Drop them with compute RPC 2.0.

    async def resize_instance(self, ctx: RequestContext, instance: dict[str, Any],
                              new_flavor: dict[str, Any]) -> None:
        """`new_flavor`: a FlavorPayload (1.2) or its untagged fields (1.0, 1.1)."""
        inst = InstancePayload.from_dict(instance)
        flavor = FlavorPayload.from_dict(new_flavor)
        resized = dataclasses.replace(inst, flavor=flavor)

        async def work() -> None:
            await self.conductor.migration_update(ctx, inst.uuid, "migrating")
            await self.driver.resize(inst.uuid, resized.guest_spec())
            await self.conductor.migration_update(ctx, inst.uuid, "post-migrating")

        # As Nova: a server resized while stopped stays off (VERIFY_RESIZE, powered off).
        power = PowerState.SHUTDOWN if inst.vm_state == VmState.STOPPED else PowerState.RUNNING
        done = await self._tracked(
            ctx, inst, "compute_resize_instance", work,
            {"vm_state": VmState.RESIZED, "power_state": power,
             "task_state": None, "flavor": flavor})
        await self.conductor.migration_update(ctx, inst.uuid, "finished" if done else "error")

    async def confirm_resize(self, ctx: RequestContext, instance: dict[str, Any]) -> None:
        inst = InstancePayload.from_dict(instance)
        done = await self._tracked(ctx, inst, "compute_confirm_resize",
                                   lambda: self.driver.confirm_resize(inst.uuid),
                                   {"vm_state": _after_resize(inst)[0], "task_state": None})
        await self.conductor.migration_update(ctx, inst.uuid, "confirmed" if done else "error",
                                              ["confirming"])

    async def revert_resize(self, ctx: RequestContext, instance: dict[str, Any],
                            old_flavor: dict[str, Any]) -> None:
        """`old_flavor`: as resize_instance's `new_flavor`."""
        inst = InstancePayload.from_dict(instance)
        flavor = FlavorPayload.from_dict(old_flavor)
        vm_state, power = _after_resize(inst)
        done = await self._tracked(ctx, inst, "compute_revert_resize",
                                   lambda: self.driver.revert_resize(inst.uuid),
                                   {"vm_state": vm_state, "power_state": power,
                                    "task_state": None, "flavor": flavor})
        await self.conductor.migration_update(ctx, inst.uuid, "reverted" if done else "error",
                                              ["reverting"])

    # --- shelve, unshelve, evacuate: calls the conductor's tasks wait for ------
    # The conductor records the action events and every state change; a failure
    # here comes back to it as the call's exception (conductor/tasks/).

    async def shelve_instance(self, ctx: RequestContext, instance: dict[str, Any],
                              image_id: str) -> int:
        """Power the guest off (ACPI first, as stop) and upload its disk as `image_id`;
        returns the guest's power state."""
        inst = InstancePayload.from_dict(instance)
        info = await self.driver.get_info(inst.uuid)
        if info.power_state != PowerState.SHUTDOWN:
            await self.driver.power_off(inst.uuid, self.conf.get("DEFAULT", "shutdown_timeout"))
        await upload_snapshot(self.driver, self.images, inst.uuid, image_id)
        return int((await self.driver.get_info(inst.uuid)).power_state)

    async def shelve_offload_instance(self, ctx: RequestContext,
                                      instance: dict[str, Any]) -> None:
        """Destroy the shelved guest (gone already is fine) and unplug its NICs."""
        inst = InstancePayload.from_dict(instance)
        await self.driver.destroy(inst.uuid)
        await self._unplug(inst)
        LOG.info("Offloaded shelved instance %s", inst.uuid)

    async def unshelve_instance(self, ctx: RequestContext, instance: dict[str, Any]) -> None:
        """Power on the guest this host still has (shelved, not offloaded), or spawn it
        from the instance's image (the conductor sends the shelved snapshot)."""
        inst = InstancePayload.from_dict(instance)
        await self.vifs.plug(_vifs(inst))
        if inst.uuid in await self.driver.list_instances():
            await self.driver.power_on(inst.uuid)
        else:
            await self._spawn_moved(inst)

    async def rebuild_evacuated(self, ctx: RequestContext, instance: dict[str, Any],
                                stopped: bool) -> None:
        """Spawn an instance evacuated here from its image (its disk stayed on the
        failed host); power it off after when it is to end stopped."""
        inst = InstancePayload.from_dict(instance)
        await self.vifs.plug(_vifs(inst))
        await self._spawn_moved(inst)
        if stopped:
            await self.driver.power_off(inst.uuid, 0)

    async def _spawn_moved(self, inst: InstancePayload) -> None:
        """Spawn (cleaning up after a failure, as a build does) and let the guest's
        traffic through the firewall."""
        try:
            await self.driver.spawn(inst.guest_spec())
        except Exception:
            await self.driver.destroy(inst.uuid)
            await self._unplug(inst)
            raise
        if inst.network_info:
            await self.network.refresh({self.host})

    async def _clean_evacuated(self, ctx: RequestContext) -> list[str]:
        """destroy_evacuated_instances, without stopping the start if it fails (the
        guests are destroyed by recover, or at a later start, instead)."""
        try:
            return await self.destroy_evacuated_instances(ctx)
        except exceptions.NovaletError as exc:
            LOG.warning("Could not clean up evacuated instances: %s", exc)
            return []

    async def destroy_evacuated_instances(self, ctx: RequestContext) -> list[str]:
        """Destroy the guests evacuated from this host while it was down (they run on
        another host now: Nova's _destroy_evacuated_instances) and tell the conductor
        each one is cleaned up; the uuids destroyed. Run at start, before serving."""
        uuids = await self.conductor.evacuated_instances(ctx, self.host)
        if not uuids:
            return []
        local = set(await self.driver.list_instances())
        destroyed = []
        for uuid in uuids:
            if uuid in local:
                LOG.info("Destroying %s: it was evacuated to another host", uuid)
                await self.driver.destroy(uuid)
                destroyed.append(uuid)
            await self.conductor.evacuation_cleaned(ctx, self.host, uuid)
        return destroyed

    # --- admin API --------------------------------------------------------------

    async def get_host_uptime(self, ctx: RequestContext) -> str:
        return await self.driver.get_host_uptime()

    async def get_diagnostics(self, ctx: RequestContext, uuid: str) -> dict[str, Any]:
        """The running guest's Diagnostics model (1.4); GuestNotRunning (409) otherwise."""
        state = (await self.driver.get_info(uuid)).power_state
        if state != PowerState.RUNNING:
            raise GuestNotRunning(uuid=uuid, state=state.name.lower())
        return (await self.driver.get_diagnostics(uuid)).to_dict()

    async def external_instance_event(self, ctx: RequestContext,
                                      events: list[dict[str, Any]]) -> None:
        """Events from other services (os-server-external-events, and the host's
        network service reporting plugs). One a build waits for (network-vif-plugged
        for a port of its instance) goes to it; others are logged; power-update (an
        outside power change, tag POWER_ON or POWER_OFF) syncs the instance's power
        state when no operation is under way on it. `events`: ExternalEvent models
        (1.1) or their untagged fields (1.0)."""
        for event in map(ExternalEvent.from_dict, events):
            if self.instance_events.deliver(event):
                LOG.debug("Event %s (tag %s, status %s) for %s: awaited", event.name,
                          event.tag, event.status, event.server_uuid)
                continue
            LOG.info("External event %s (tag %s, status %s) for instance %s",
                     event.name, event.tag, event.status, event.server_uuid)
            if event.name != "power-update":
                continue
            on = event.tag == "POWER_ON"
            values = {"vm_state": VmState.ACTIVE if on else VmState.STOPPED,
                      "power_state": PowerState.RUNNING if on else PowerState.SHUTDOWN}
            try:
                await self.conductor.instance_update(ctx, event.server_uuid, values,
                                                     expected_task_state=[None])
            except (*GONE, exceptions.Conflict) as exc:
                LOG.info("Not syncing power of %s: %s", event.server_uuid, exc)
