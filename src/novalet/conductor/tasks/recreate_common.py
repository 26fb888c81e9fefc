"""What the shelve, unshelve and evacuate tasks share: the scheduling request of a
move, and one way to record a step and to fail one.

Each task runs in the conductor (the API casts to it), calls the compute hosts
(their work comes back as the call's result or exception), and writes every
state change itself: compare-and-swap on the task_state it expects, so a server
deleted or changed meanwhile is left alone.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute.payloads import RequestSpec
from novalet.db import instance_actions, instances, services
from novalet.db.engine import Database
from novalet.db.models import Instance

LOG = logging.getLogger(__name__)
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


class StepFailed(Exception):
    """A step failed and was recorded (event Error, fault): the task stops there."""


def move_spec(instance: Instance, availability_zone: str | None,
              host: str | None) -> RequestSpec:
    """The request to schedule `instance` anew: its create request's spec (resources,
    hints, group), without the create's forced host, in `availability_zone`, on
    `host` if given (the scheduler's filters still check it)."""
    flavor = instance.flavor
    base = dict(instance.request_spec or {})
    if base:
        spec = RequestSpec.from_dict(base)
    else:  # a row from before request specs were kept: its flavor says enough
        spec = RequestSpec(instance_uuids=[], project_id=instance.project_id or "",
                           user_id=instance.user_id or "", vcpus=int(flavor["vcpus"]),
                           memory_mb=int(flavor["memory_mb"]),
                           disk_gb=int(flavor["root_gb"]) + int(flavor["ephemeral_gb"])
                           + (int(flavor.get("swap") or 0) + 1023) // 1024,
                           extra_specs=dict(flavor.get("extra_specs") or {}))
    spec.instance_uuids = [instance.uuid]
    spec.availability_zone = availability_zone
    spec.force_host, spec.force_node = host, None
    spec.group_hosts, spec.hinted_hosts = {}, {}
    return spec


class Steps:
    """Records one task's steps as instance-action events of ctx's request."""

    def __init__(self, db: Database, ctx: RequestContext, uuid: str) -> None:
        self.db = db
        self.ctx = ctx
        self.uuid = uuid

    async def run(self, event: str, host: str | None, work: Callable[[], Awaitable[T]],
                  rollback: dict[str, Any], expected: list[str | None]) -> T:
        """Run `work()` as event `event` on `host`. On failure: a fault, the event
        closed with Error, the instance put back to `rollback` (only while its
        task_state is one of `expected`), and StepFailed."""
        await instance_actions.event_start(self.db, self.ctx, self.uuid, event, host)
        try:
            result = await work()
        except Exception as exc:
            await self.fail(event, host, exc, rollback, expected)
            raise StepFailed() from exc
        await instance_actions.event_finish(self.db, self.ctx, self.uuid, event, "Success")
        return result

    async def fail(self, event: str, host: str | None, exc: Exception,
                   rollback: dict[str, Any], expected: list[str | None]) -> None:
        LOG.warning("%s of %s failed: %s", event, self.uuid, exc)
        details = "".join(traceback.format_exception(exc))
        await instance_actions.add_fault(self.db, self.uuid, getattr(exc, "code", 500),
                                         str(exc), details, host)
        await put_back(self.db, self.uuid, rollback, expected)
        await instance_actions.event_finish(self.db, self.ctx, self.uuid, event, "Error",
                                            traceback=details)


async def put_back(db: Database, uuid: str, values: dict[str, Any],
                   expected: list[str | None]) -> bool:
    """Write `values` if the task_state is still one of `expected`; False when the
    instance was deleted or changed meanwhile (then it is not ours to put back)."""
    try:
        await instances.set_fields(db, uuid, values, expected_task_state=expected)
    except (exceptions.NotFound, exceptions.Conflict) as exc:
        LOG.info("Not putting %s back: %s", uuid, exc)
        return False
    return True


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
