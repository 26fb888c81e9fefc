"""Evacuate: the rules, then a cast to the conductor's task (conductor/tasks/evacuate.py).

Nova's semantics: admin only (the handler's policy); only off a host whose compute
service is down or forced down (else 400 "Compute service of X is still in
use."); a named destination must be a compute host (404) other than the
server's own (400); the server ACTIVE, STOPPED or ERROR with no task (409; a lock
does not stop an admin's evacuation). The server ends as it was (stopped if it
was stopped, else active), or stopped whatever it was from 2.95.
"""

from __future__ import annotations

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.compute import migrations
from novalet.compute.api import ComputeAPI, InstanceInvalidState, InvalidRequest
from novalet.compute.recreate_requests import EvacuateRequest
from novalet.compute.states import ALLOWED, TaskState, VmState
from novalet.db import instance_actions, instances, migrations_records, services


class ComputeServiceInUse(exceptions.Invalid):
    msg_fmt = "Compute service of %(host)s is still in use."


class EvacuateHostNotFound(exceptions.NotFound):
    msg_fmt = "Compute host %(host)s not found."


async def evacuate(api: ComputeAPI, ctx: RequestContext, uuid: str, host: str | None, *,
                   force: bool = False, stop: bool = False) -> None:
    """`force`: claim on `host` without the scheduler's filters (below 2.68);
    `stop`: end stopped whatever the server was (2.95)."""
    instance = await api.get(ctx, uuid)
    if host is not None:
        try:
            await services.find_service(api.db, host, "nova-compute")
        except exceptions.NotFound:
            raise EvacuateHostNotFound(host=host) from None
        if instance.host == host:
            raise InvalidRequest(reason="The target host can't be the same one.")
    vm_states, task_states, task_state = ALLOWED["evacuate"]
    for attr, state, allowed in (("vm_state", instance.vm_state, vm_states),
                                 ("task_state", instance.task_state, task_states)):
        if state not in allowed:
            raise InstanceInvalidState(action="evacuate", uuid=uuid, attr=attr, state=state)
    if instance.host is None:
        raise InstanceInvalidState(action="evacuate", uuid=uuid, attr="host", state=None)
    if await api._host_up(instance.host):
        raise ComputeServiceInUse(host=instance.host)
    await instances.update(api.db, uuid, {"task_state": task_state}, expected_task_state=[None])
    await instance_actions.start(api.db, ctx, [uuid], "evacuate")
    migration = await migrations.record_evacuation(api.db, ctx, instance, host)
    try:
        await api.conductor.evacuate_instance(ctx, EvacuateRequest(
            instance_uuid=uuid, migration_uuid=migration.uuid, host=host,
            force=force and host is not None,
            stopped=stop or instance.vm_state == VmState.STOPPED))
    except exceptions.NovaletError:
        await migrations_records.update(api.db, migration.uuid, {"status": "error"})
        try:
            await instances.set_fields(api.db, uuid, {"task_state": None},
                                       expected_task_state=[TaskState.REBUILDING])
        except (exceptions.Conflict, exceptions.NotFound):
            pass
        raise
