"""What the shelve, unshelve and evacuate tasks share: the scheduling request of a
move (base.spec_for's, in a zone), and the step recorder of every task (base.Steps).

Each task runs in the conductor (the API casts to it), calls the compute hosts
(their work comes back as the call's result or exception), and writes every
state change itself: compare-and-swap on the task_state it expects, so a server
deleted or changed meanwhile is left alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from novalet import config, exceptions
from novalet.compute.payloads import Destination, RequestSpec
from novalet.compute.states import TaskState
from novalet.compute.put_back import put_back as put_back
# One step recorder and one spec builder for every conductor task (base.py).
from novalet.conductor.tasks.base import StepFailed as StepFailed
from novalet.conductor.tasks.base import Steps as Steps
from novalet.conductor.tasks.base import spec_for
from novalet.db import instances, services
from novalet.db.engine import Database
from novalet.db.models import Instance
from novalet.network.api import NetworkAPI

T = TypeVar("T")
# The system_metadata keys of a shelved server (Nova's): when, into which image, from
# which host.
SHELVED_KEYS = ("shelved_at", "shelved_image_id", "shelved_host")


class ComputeHostDown(exceptions.Conflict):
    msg_fmt = "Compute host %(host)s is down: %(action)s cannot run there now."


async def on_host(db: Database, conf: config.Config, host: str, action: str,
                  call: Callable[[], Awaitable[T]]) -> T:
    """`call()` to `host` if its compute service is up; ComputeHostDown if not (a
    call to a dead host would only wait out its long timeout)."""
    if not await services.compute_is_up(db, host, conf.get("DEFAULT", "service_down_time")):
        raise ComputeHostDown(host=host, action=action)
    return await call()


def move_spec(instance: Instance, availability_zone: str | None,
              host: str | None) -> RequestSpec:
    """The request to schedule `instance` anew (base.spec_for: its create request's
    spec with its flavor's sizes, hints, group; not the create's forced host) in
    `availability_zone`, on `host` if given (the scheduler's filters still check it)."""
    spec = spec_for(instance, instance.flavor, host)
    spec.availability_zone = availability_zone
    return spec


async def place_on(db: Database, network: NetworkAPI, instance: Instance, dest: Destination,
                   task_state: TaskState, expected: TaskState) -> Instance:
    """Move `instance` onto its claimed destination before a spawn there: NICs from
    that host's network, then host, node, zone and `task_state` in one compare-and-
    swap on `expected` (Conflict or NotFound when it was changed or deleted); the
    host it left and the new one then refresh their networking."""
    vifs = await network.allocate_for_instance(
        instance.uuid, instance.project_id, dest.host, instance.hostname,
        user_id=instance.user_id)
    placed = await instances.update(db, instance.uuid, {
        "host": dest.host, "node": dest.node, "availability_zone": dest.availability_zone,
        "task_state": task_state, "system_metadata": {
            **instance.system_metadata, "network_info": [v.to_dict() for v in vifs]}},
        expected_task_state=[expected])
    await network.instance_moved(instance.host, dest.host)
    return placed


def payload(instance: Instance) -> dict[str, Any]:
    """The instance as compute hosts receive it (conductor.manager.payload_of; looked up
    when called, as conductor.manager builds these tasks)."""
    from novalet.conductor.manager import payload_of
    return payload_of(instance)


async def get_or_none(db: Database, uuid: str) -> Instance | None:
    """The instance, or None once it is deleted."""
    try:
        return await instances.get(db, uuid)
    except exceptions.NotFound:
        return None
