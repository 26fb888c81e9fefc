"""Shelve, shelve-offload and unshelve: the rules (states, zones, hosts), then a
cast to the conductor's tasks (conductor/tasks/shelve.py, unshelve.py).

Nova's semantics: shelve snapshots the server into an image named
`<name>-shelved` and leaves it SHELVED (powered off, still on its host);
shelveOffload (admin by default) frees the host; unshelve of a SHELVED server
restarts it in place, of a SHELVED_OFFLOADED one schedules it anew. From 2.77
unshelve takes an availability zone, from 2.91 a host (admin) and a null zone
(unpin); either is only for SHELVED_OFFLOADED servers.
"""

from __future__ import annotations

from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.compute.host_not_found import TargetHostNotFound
from novalet.compute.recreate_requests import UnshelveRequest
from novalet.compute.states import ALLOWED, TaskState, VmState
from novalet.db import instance_actions, instances, placement
from novalet.db.models import Instance
from novalet.compute.api import ComputeAPI, InstanceInvalidState, InvalidRequest

# The zone argument of unshelve when the request has none (None unpins, from 2.91).
ZONE_UNCHANGED: Any = object()


class UnshelveInstanceInvalidState(exceptions.Conflict):
    msg_fmt = ('Specifying an availability zone or a host when unshelving server '
               '"%(uuid)s" with status "%(state)s" is not supported. The server status '
               'must be SHELVED_OFFLOADED.')


class UnshelveHostNotInAZ(exceptions.Conflict):
    msg_fmt = 'Host "%(host)s" is not in the availability zone "%(availability_zone)s".'


async def shelve(api: ComputeAPI, ctx: RequestContext, uuid: str) -> None:
    """Start shelving: task_state shelving, the `shelve` action, the queued image
    `<name>-shelved`; the conductor does the rest."""
    instance = await api._begin(ctx, uuid, "shelve", "shelve")
    try:
        image = await api.snapshot_image(ctx, instance, f"{instance.display_name}-shelved", {})
    except Exception:
        await _idle(api, uuid, TaskState.SHELVING)
        raise
    try:
        await api.conductor.shelve_instance(ctx, uuid, str(image["id"]))
    except exceptions.NovaletError:  # not sent: nothing will upload into the image
        await api.images.discard_unfinished(str(image["id"]))
        await _idle(api, uuid, TaskState.SHELVING)
        raise


async def shelve_offload(api: ComputeAPI, ctx: RequestContext, uuid: str) -> None:
    await api._begin(ctx, uuid, "shelve_offload", "shelveOffload")
    try:
        await api.conductor.shelve_offload_instance(ctx, uuid)
    except exceptions.NovaletError:
        await _idle(api, uuid, TaskState.SHELVING_OFFLOADING)
        raise


async def unshelve(api: ComputeAPI, ctx: RequestContext, uuid: str,
                   zone: Any = ZONE_UNCHANGED, host: str | None = None) -> None:
    """`zone`: ZONE_UNCHANGED, a zone name, or None (unpin); `host`: a target host.
    Checks in Nova's order: lock and state (409), zone or host only when offloaded
    (409), the zone exists (400), the host policy (403), the host exists (400) and
    is in the zone the server will have (409)."""
    instance = await api.get(ctx, uuid)
    _check_state(api, ctx, instance, "unshelve")
    zone_given = zone is not ZONE_UNCHANGED
    if (zone_given or host) and instance.vm_state != VmState.SHELVED_OFFLOADED:
        raise UnshelveInstanceInvalidState(uuid=uuid, state=instance.vm_state)
    zones = await placement.zones_by_host(api.db)
    if zone_given and zone and zone not in set(zones.values()):
        raise InvalidRequest(reason="The requested availability zone is not available")
    spec = dict(instance.request_spec or {})
    new_zone = zone if zone_given else spec.get("availability_zone")
    if host:
        policy.enforce(ctx, "os_compute_api:os-shelve:unshelve_to_host",
                       instance.project_id)
        if host not in zones:
            raise TargetHostNotFound(host=host)
        if new_zone is not None and zones[host] != new_zone:
            raise UnshelveHostNotInAZ(host=host, availability_zone=new_zone)
    values: dict[str, Any] = {"task_state": TaskState.UNSHELVING}
    if zone_given:  # the server's zone from now on (Nova saves it on its request spec)
        values["requested_availability_zone"] = new_zone
        if spec:
            values["request_spec"] = {**spec, "availability_zone": new_zone}
    await instances.update(api.db, uuid, values, expected_task_state=[None])
    await instance_actions.start(api.db, ctx, [uuid], "unshelve")
    try:
        await api.conductor.unshelve_instance(ctx, UnshelveRequest(
            instance_uuid=uuid, availability_zone=new_zone, host=host))
    except exceptions.NovaletError:
        await _idle(api, uuid, TaskState.UNSHELVING)
        raise


def _check_state(api: ComputeAPI, ctx: RequestContext, instance: Instance,
                 action: str) -> None:
    """Lock and ALLOWED[action] (for a server that may have no host)."""
    api._check_lock(ctx, instance)
    vm_states, task_states, _ = ALLOWED[action]
    if instance.vm_state not in vm_states:
        raise InstanceInvalidState(action=action, uuid=instance.uuid, attr="vm_state",
                                   state=instance.vm_state)
    if instance.task_state not in task_states:
        raise InstanceInvalidState(action=action, uuid=instance.uuid, attr="task_state",
                                   state=instance.task_state)


async def _idle(api: ComputeAPI, uuid: str, task_state: str) -> None:
    """Put back the task_state of an action that did not get to the conductor."""
    try:
        await instances.set_fields(api.db, uuid, {"task_state": None},
                                   expected_task_state=[task_state])
    except (exceptions.Conflict, exceptions.NotFound):
        pass

