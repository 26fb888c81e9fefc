"""The smaller server actions Nova has, as rules of the compute domain service.

os-resetState, changePassword, soft delete with restore and forceDelete
(`[DEFAULT] reclaim_instance_interval`), createBackup, os-server-password,
trigger_crash_dump and addFixedIp/removeFixedIp. A mixin of compute.api.ComputeAPI,
which provides the records, the clients and `_begin` (lock and state checks, the
driver capability gate, task_state compare-and-swap and the instance action).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.compute import capabilities
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.states import ALLOWED, TaskState, VmState
from novalet.conductor.manager import payload_of
from novalet.db import instance_actions, instances
from novalet.db import network as db_network
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.network.api import NetworkAPI
from novalet.rpc.bus import BusUnavailable, MessagingTimeout

LOG = logging.getLogger(__name__)

# os-resetState's body value -> vm_state
RESET_STATES = {"active": VmState.ACTIVE, "error": VmState.ERROR}


@dataclass(frozen=True)
class Backup:
    """createBackup's own arguments: the backup's type and how many to keep."""

    type: str
    rotation: int

    def properties(self) -> dict[str, str]:
        """Image properties that mark the image a backup (what rotation looks for)."""
        return {"image_type": "backup", "backup_type": self.type}


class FixedIpNotFoundForInstance(exceptions.Invalid):
    msg_fmt = "Instance %(uuid)s doesn't have fixed IP '%(address)s'."


class ServerOps:
    db: Database
    conf: config.Config
    network: NetworkAPI
    compute: compute_rpcapi.ComputeAPI
    get: Callable[[RequestContext, str], Awaitable[Instance]]
    _begin: Callable[..., Awaitable[Instance]]
    _check_lock: Callable[[RequestContext, Instance], None]
    _host_up: Callable[[str], Awaitable[bool]]
    _save_network_info: Callable[[Instance], Awaitable[Instance]]
    delete: Callable[..., Awaitable[None]]
    snapshot: Callable[..., Awaitable[str]]

    # --- os-resetState (admin) ---------------------------------------------------

    async def reset_state(self, ctx: RequestContext, uuid: str, state: str) -> None:
        """vm_state active or error, task_state cleared, whatever they were (locks
        included): the admin's way out of a stuck task. Recorded as resetState."""
        await self.get(ctx, uuid)
        await instance_actions.start(self.db, ctx, [uuid], "resetState")
        await instances.set_fields(self.db, uuid, {"vm_state": RESET_STATES[state],
                                                   "task_state": None})
        LOG.info("vm_state of %s reset to %s by %s", uuid, state, ctx.user_id)

    # --- changePassword --------------------------------------------------------

    async def change_password(self, ctx: RequestContext, uuid: str, password: str) -> None:
        """Through the host's driver, waiting for it: a host whose guests can't take a
        password is refused up front (409); the host's own refusal is a 409 too."""
        instance = await self._begin(ctx, uuid, "change_password", "changePassword")
        try:
            await self.compute.set_admin_password(ctx, _host(instance), payload_of(instance),
                                                  password)
        except (BusUnavailable, MessagingTimeout, compute_rpcapi.HostTooOld):
            await _put_back(self.db, uuid, TaskState.UPDATING_PASSWORD)
            raise

    # --- soft delete: DELETE, restore, forceDelete ---------------------------------

    async def soft_delete(self, ctx: RequestContext, instance: Instance) -> bool:
        """DELETE with `[DEFAULT] reclaim_instance_interval` > 0 on a server that has
        run: powered off and SOFT_DELETED (still counted by quotas, its resources
        held) until restore, forceDelete or the reclaim. False when a delete must
        happen now instead (interval 0, never launched, a delete under way, or the
        upgrade cap keeps hosts from soft-deleting: see _can_soft_delete)."""
        if (self.conf.get("DEFAULT", "reclaim_instance_interval") <= 0
                or not instance.launched_at or instance.task_state == TaskState.DELETING):
            return False
        uuid, now = instance.uuid, utcnow()
        if instance.host and await self._host_up(instance.host):
            if not self._can_soft_delete(uuid):
                return False
            await instance_actions.start(self.db, ctx, [uuid], "delete")
            before = {"task_state": instance.task_state, "deleted_at": instance.deleted_at}
            instance = await instances.update(self.db, uuid, {
                "task_state": TaskState.SOFT_DELETING, "deleted_at": now})
            try:
                await self.compute.soft_delete_instance(ctx, instance.host or "",
                                                        payload_of(instance))
            except (BusUnavailable, compute_rpcapi.HostTooOld):
                await _put_back(self.db, uuid, TaskState.SOFT_DELETING, before)
                raise
        else:  # nothing runs it: soft-deleted here, as Nova's local soft delete
            await instance_actions.start(self.db, ctx, [uuid], "delete")
            LOG.info("Soft-deleting %s locally (no compute host is running it)", uuid)
            await instances.set_fields(self.db, uuid, {
                "vm_state": VmState.SOFT_DELETED, "task_state": None, "deleted_at": now,
                "terminated_at": now})
        return True

    def _can_soft_delete(self, uuid: str) -> bool:
        """Whether hosts may be sent soft_delete_instance (compute RPC 1.3). Not while
        [upgrade_levels] compute caps it lower: then DELETE deletes now, as it does
        with the reclaim interval off (Nova's default). A user asking DELETE wants
        the server gone and can do nothing about an upgrade cap; a 409 would fail
        every delete for the whole upgrade window, while the grace period is an
        operator's option the operator suspends by capping the RPC."""
        if _serves(self.compute, "1.3"):
            return True
        LOG.warning("Deleting %s now instead of soft-deleting it: [upgrade_levels] "
                    "compute is below 1.3 (soft_delete_instance)", uuid)
        return False

    async def restore(self, ctx: RequestContext, uuid: str) -> None:
        """A SOFT_DELETED server powered on again (409 in any other state, and while
        the upgrade cap keeps hosts from restoring). Its quota usage never went
        away, so nothing is checked again."""
        found = await self._ready_for(ctx, uuid, "restore", "restore")  # 404, 409 first
        if not _serves(self.compute, "1.3"):  # refused before anything is written
            raise compute_rpcapi.HostTooOld(method="restore_instance", version="1.3")
        instance = await self._begin(ctx, uuid, "restore", "restore", {"deleted_at": None})
        try:
            await self.compute.restore_instance(ctx, _host(instance), payload_of(instance))
        except (BusUnavailable, compute_rpcapi.HostTooOld):
            await _put_back(self.db, uuid, TaskState.RESTORING,
                            {"deleted_at": found.deleted_at})
            raise

    async def force_delete(self, ctx: RequestContext, uuid: str) -> None:
        """Delete now, whatever the interval. As in Nova, in any state (a locked server
        is a 409); on a SOFT_DELETED server it ends the wait for reclaim."""
        await self.delete(ctx, uuid, force=True)

    # --- createBackup --------------------------------------------------------

    async def backup(self, ctx: RequestContext, uuid: str, name: str, backup: Backup,
                     metadata: dict[str, str]) -> str:
        """createImage's path with the backup's properties; the host deletes the
        oldest backups beyond the rotation once the new one is uploaded."""
        return await self.snapshot(ctx, uuid, name, metadata, backup=backup)

    # --- os-server-password ------------------------------------------------------

    async def server_password(self, ctx: RequestContext, uuid: str) -> str:
        """What the guest posted to the metadata service ('' if nothing yet)."""
        instance = await self.get(ctx, uuid)
        return str(instance.system_metadata.get("password") or "")

    async def clear_server_password(self, ctx: RequestContext, uuid: str) -> None:
        """Forget it (the guest's own password is unchanged); the guest may post again."""
        await self.get(ctx, uuid)
        await instances.clear_password(self.db, uuid)

    # --- trigger_crash_dump (2.17) -------------------------------------------------

    async def trigger_crash_dump(self, ctx: RequestContext, uuid: str) -> None:
        instance = await self._begin(ctx, uuid, "trigger_crash_dump", "trigger_crash_dump")
        await self.compute.trigger_crash_dump(ctx, _host(instance), payload_of(instance))

    # --- addFixedIp / removeFixedIp (nova-network multinic, up to 2.43) -----------

    async def add_fixed_ip(self, ctx: RequestContext, uuid: str, network_uuid: str) -> None:
        """A NIC with an address from the network, plugged into the guest (Nova
        records no instance action for it). The host failing undoes the allocation."""
        instance = await self._ready_for(ctx, uuid, "add_fixed_ip", "addFixedIp")
        try:
            vif = await self.network.add_interface(instance.uuid, instance.project_id or "",
                                                   instance.host, network_uuid)
        except db_network.NoMoreFixedIps as exc:  # Nova's multinic answers 400
            raise compute_api.InvalidRequest(reason=exc.message) from None
        instance = await self._save_network_info(instance)
        try:
            await self.compute.attach_interface(ctx, _host(instance), payload_of(instance), vif)
        except exceptions.NovaletError as exc:
            await self.network.remove_interface(instance.uuid, vif.id)
            await self._save_network_info(instance)
            raise compute_api.InterfaceAttachFailed(uuid=uuid, reason=exc.message) from exc

    async def remove_fixed_ip(self, ctx: RequestContext, uuid: str, address: str) -> None:
        """Unplug and release the NIC that has `address` (400 if none has)."""
        instance = await self._ready_for(ctx, uuid, "remove_fixed_ip", "removeFixedIp")
        vif = next((v for v in await self.network.vifs_for_instance(uuid)
                    if v.fixed_ip == address), None)
        if vif is None:
            raise FixedIpNotFoundForInstance(uuid=uuid, address=address)
        try:
            await self.compute.detach_interface(ctx, _host(instance), payload_of(instance), vif)
        except exceptions.NovaletError as exc:
            raise compute_api.InterfaceDetachFailed(uuid=uuid, reason=exc.message) from exc
        await self.network.remove_interface(instance.uuid, vif.id)
        await self._save_network_info(instance)

    async def _ready_for(self, ctx: RequestContext, uuid: str, action: str,
                         public: str) -> Instance:
        """Lock, state and capability checks of `action` without a task_state or an
        instance action (for the synchronous actions Nova records none for)."""
        instance = await self.get(ctx, uuid)
        self._check_lock(ctx, instance)
        vm_states, task_states, _ = ALLOWED[action]
        if instance.vm_state not in vm_states:
            raise compute_api.InstanceInvalidState(action=public, uuid=uuid, attr="vm_state",
                                                   state=instance.vm_state)
        if instance.task_state not in task_states:
            raise compute_api.InstanceInvalidState(action=public, uuid=uuid,
                                                   attr="task_state", state=instance.task_state)
        if instance.host is None:
            raise compute_api.InstanceInvalidState(action=public, uuid=uuid, attr="host",
                                                   state=None)
        await capabilities.check(self.db, instance, action, public)
        return instance


def _host(instance: Instance) -> str:
    assert instance.host is not None  # _begin and _ready_for refused host-less instances
    return instance.host


def _serves(compute: compute_rpcapi.ComputeAPI, version: str) -> bool:
    """Whether [upgrade_levels] compute lets hosts be sent compute RPC `version`."""
    return compute.caps.version("compute", version, fallback="") == version


async def _put_back(db: Database, uuid: str, task_state: str,
                    values: dict[str, Any] | None = None) -> None:
    """Clear a task_state the host never got to (unless something else moved it),
    and put back the other `values` written with it."""
    try:
        await instances.set_fields(db, uuid, {"task_state": None, **(values or {})},
                                   expected_task_state=[task_state])
    except (exceptions.Conflict, exceptions.NotFound):
        pass


# Last: compute.api imports this module for its base class, and this one needs
# compute.api's errors only when a method runs (either module may be imported first).
from novalet.compute import api as compute_api  # noqa: E402
