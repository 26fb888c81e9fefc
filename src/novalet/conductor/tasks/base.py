"""What the conductor's move tasks share: their dependencies, instance-action events,
faults, compare-and-swap writes, scheduling a destination, and running in the
background after the caller got its answer."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.move_payloads import MoveOrder, MoveSpec, MoveTarget
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.payloads import Destination, InstancePayload, RequestSpec
from novalet.compute.put_back import put_back
from novalet.compute.driver_types import DriverCapabilities
from novalet.compute.states import VmState
from novalet.db import compute_nodes, instance_actions, instances, migrations_records, placement
from novalet.db.engine import Database
from novalet.db.models import Instance, Migration
from novalet.network.api import NetworkAPI
from novalet.rpc.bus import MessagingTimeout
from novalet.scheduler import hypervisor_match
from novalet.scheduler.manager import NoValidHost
from novalet.scheduler.rpcapi import SchedulerAPI

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class NoValidHostForMove(exceptions.Invalid):
    """Nova answers a migrate or resize it can't place with 400 (not a build's 500)."""

    msg_fmt = "No valid host was found. %(reason)s"


@dataclass
class TaskDeps:
    """The conductor's parts a task uses."""

    db: Database
    conf: config.Config
    scheduler: SchedulerAPI
    compute: compute_rpcapi.ComputeAPI
    host: str  # this conductor's, for its own events
    network: NetworkAPI | None = None  # hosts a guest left and joined re-apply networking


def move_consumer(uuid: str) -> str:
    """The placement consumer holding a move's destination resources until the move
    is confirmed (they become the instance's) or over (they are freed)."""
    return placement.resize_consumer(uuid)


def disk_gb(flavor: dict[str, Any]) -> int:
    return int(flavor["root_gb"]) + int(flavor["ephemeral_gb"]) + \
        (int(flavor.get("swap") or 0) + 1023) // 1024


def spec_for(instance: Instance, flavor: dict[str, Any], host: str | None) -> RequestSpec:
    """The instance's own request spec (zone, hints, server group, extra specs) with
    `flavor`'s sizes, for this instance only, pinned to `host` when one was asked for."""
    base = dict(instance.request_spec or {})
    spec = RequestSpec.from_dict(base) if base else RequestSpec(  # a row from before
        instance_uuids=[], project_id=instance.project_id or "",  # specs were kept
        user_id=instance.user_id or "", vcpus=0, memory_mb=0, disk_gb=0,
        availability_zone=instance.requested_availability_zone)
    spec.vcpus, spec.memory_mb = int(flavor["vcpus"]), int(flavor["memory_mb"])
    spec.disk_gb = disk_gb(flavor)
    spec.extra_specs = dict(flavor.get("extra_specs") or {})
    spec.force_host, spec.force_node = host, None
    spec.instance_uuids = [instance.uuid]  # (the scheduler leaves it out of its group)
    spec.group_hosts, spec.hinted_hosts = {}, {}  # the scheduler's to fill
    spec.group_generation = None
    return spec


async def claim_forced(db: Database, consumer: str, instance_uuid: str, host: str,
                       resources: dict[str, int]) -> Destination | None:
    """A claim of `resources` (a RequestSpec's, swap included) for `consumer` on
    `host` without the scheduler's filters (a forced move); None when the host has no
    provider or not enough free; NoValidHostForMove when it runs another hypervisor
    type than the server's host (hypervisor_match). Retried while other claims race it."""
    rule = await hypervisor_match.rule_for(db, instance_uuid)
    if rule is not None and not rule.allows(host):
        raise NoValidHostForMove(reason=rule.refusal(host))
    for _ in range(10):
        summary = next((p for p in await placement.summaries(db) if p.host == host), None)
        if summary is None or any(summary.free(rc) < amount
                                  for rc, amount in resources.items() if amount):
            return None
        if await placement.claim(db, consumer, summary.uuid, resources, summary.generation):
            return Destination(instance_uuid=instance_uuid, host=host, node=summary.name,
                               availability_zone=summary.availability_zone)
    return None


async def hosts_without(db: Database, flag: str) -> list[str]:
    """Compute hosts whose hypervisor reported it lacks `flag` (a DriverCapabilities
    field): never a move's destination (a host that reported nothing may try)."""
    return sorted({node.host for node in await compute_nodes.list_nodes(db)
                   if not DriverCapabilities.from_dict(
                       json.loads(node.capabilities) if node.capabilities else None
                   ).supports(flag)})


class StepFailed(Exception):
    """A step failed and was recorded (event Error, fault): the task stops there."""


class Steps:
    """Records one task's steps as instance-action events of ctx's request, and its
    faults."""

    def __init__(self, db: Database, ctx: RequestContext, uuid: str) -> None:
        self.db = db
        self.ctx = ctx
        self.uuid = uuid
        self.closing: list[asyncio.Task[None]] = []  # beside()'s Success closings

    @asynccontextmanager
    async def event(self, name: str, host: str | None) -> AsyncIterator[None]:
        """An instance-action event around a step: Success, or Error with the
        traceback (the step's exception goes on, even when its Error closing could
        not be written: a task tells a timed-out step from a failed one by it)."""
        await instance_actions.event_start(self.db, self.ctx, self.uuid, name, host)
        try:
            yield
        except BaseException as exc:
            await self._written(instance_actions.event_finish(
                self.db, self.ctx, self.uuid, name, "Error",
                traceback="".join(traceback.format_exception(exc))), f"{name}'s closing")
            raise
        await instance_actions.event_finish(self.db, self.ctx, self.uuid, name, "Success")

    async def beside(self, name: str, host: str | None, work: Awaitable[T]) -> T:
        """`work` as event `name`, its records written beside the step rather than
        around it (for a flow whose wall time the user waits for, e.g. a live
        migration): the event opens while the step runs, and its Success closing is
        left to `settle()`. An Error closing is written before the exception goes on.
        A record that could not be written is logged: the step's outcome stands
        (a live migration done is not undone for a lost event row, and a failed
        step's own exception is not replaced by the database's)."""
        opened = asyncio.create_task(
            instance_actions.event_start(self.db, self.ctx, self.uuid, name, host))
        try:
            result = await work
        except BaseException as exc:
            await self._written(opened, name)
            await self._written(instance_actions.event_finish(
                self.db, self.ctx, self.uuid, name, "Error",
                traceback="".join(traceback.format_exception(exc))), f"{name}'s closing")
            raise
        await self._written(opened, name)  # (a closing needs its opening in the table)
        self.closing.append(asyncio.create_task(
            instance_actions.event_finish(self.db, self.ctx, self.uuid, name, "Success")))
        return result

    async def settle(self) -> None:
        """Wait for the Success closings beside() left running."""
        pending, self.closing = self.closing, []
        for task in pending:
            await self._written(task, "a step's closing")

    async def _written(self, record: Awaitable[None], what: str) -> None:
        try:
            await record
        except Exception as exc:  # noqa: BLE001 - bookkeeping, not the step's outcome
            LOG.warning("The instance-action event %s of %s was not recorded: %s",
                        what, self.uuid, exc)

    async def fault(self, exc: BaseException, host: str | None) -> None:
        LOG.warning("A step of %s failed: %s", self.uuid, exc)
        await instance_actions.add_fault(self.db, self.uuid, getattr(exc, "code", 500),
                                         str(exc), "".join(traceback.format_exception(exc)),
                                         host)

    async def run(self, event: str, host: str | None, work: Callable[[], Awaitable[T]],
                  rollback: dict[str, Any], expected: list[str | None]) -> T:
        """Run `work()` as event `event` on `host`. On failure: a fault, the instance
        put back to `rollback` (only while its task_state is one of `expected`), the
        event closed with Error, and StepFailed."""
        try:
            async with self.event(event, host):
                try:
                    return await work()
                except Exception as exc:
                    await self.fault(exc, host)
                    await put_back(self.db, self.uuid, rollback, expected)
                    raise
        except Exception as exc:
            raise StepFailed() from exc


class MoveTask:
    """One move of one instance, as the conductor runs it."""

    def __init__(self, deps: TaskDeps, ctx: RequestContext, instance_uuid: str) -> None:
        self.deps = deps
        self.db = deps.db
        self.ctx = ctx
        self.uuid = instance_uuid
        self.steps = Steps(deps.db, ctx, instance_uuid)  # events and faults

    async def instance(self) -> Instance:
        return await instances.get(self.db, self.uuid)

    async def set_instance(self, values: dict[str, Any], expected: list[str | None]
                           ) -> None:
        await instances.set_fields(self.db, self.uuid, values, expected_task_state=expected)

    async def set_migration(self, migration: Migration, values: dict[str, Any],
                            from_statuses: tuple[str, ...] | None = None) -> bool:
        """Move the migration on (compare-and-swap on its status); False when it was
        not in one of `from_statuses` (e.g. aborted meanwhile)."""
        done = await migrations_records.update(self.db, migration.uuid, values, from_statuses)
        if done is not None:
            migration.status = done.status
        return done is not None

    async def schedule(self, spec: RequestSpec, ignore: list[str]) -> Destination:
        """A destination claimed for the move's consumer (NoValidHostForMove, 400)."""
        try:
            return await self.deps.scheduler.select_move_destination(
                self.ctx, MoveSpec(spec=spec, consumer=move_consumer(self.uuid),
                                   ignore_hosts=ignore))
        except NoValidHost as exc:
            reason = exc.message.removeprefix("No valid host was found. ")
            raise NoValidHostForMove(reason=reason) from None

    def order(self, instance: Instance, migration: Migration, flavor: dict[str, Any],
              **flags: Any) -> MoveOrder:
        from novalet.conductor.manager import payload_of  # the manager imports the tasks
        return MoveOrder(migration_uuid=migration.uuid,
                         instance=InstancePayload.from_dict(payload_of(instance)),
                         source_host=migration.source_compute or "",
                         dest_host=migration.dest_compute or "",
                         dest_node=migration.dest_node, flavor=FlavorPayload.of(flavor),
                         **flags)

    async def step(self, host: str, step: str, order: MoveOrder) -> MoveTarget | None:
        """A step may stop a guest and copy its disks: it gets long_rpc_timeout. What
        a destination's prepare step answered (where the source sends the guest)."""
        return await self.deps.compute.move_step(self.ctx, host, step, order,
                                                 timeout=self.deps.compute.long_timeout)

    async def stuck(self, migration: Migration, exc: Exception, host: str | None,
                    values: dict[str, Any] | None = None) -> bool:
        """A move whose state nobody knows (a step timed out: the host may still be
        at it), or whose guest is on the destination whatever the record said: no
        revert step runs. Migration error, the server ERROR (with `values`, e.g. its
        new host) and a fault; the claims stay for an operator to settle. False when
        the server was deleted meanwhile (its move claim is freed then)."""
        await migrations_records.update(self.db, migration.uuid, {"status": "error"})
        await self.steps.fault(exc, host)
        try:
            await instances.set_fields(self.db, self.uuid, {
                **(values or {}), "vm_state": VmState.ERROR, "task_state": None})
        except exceptions.NotFound:  # deleted meanwhile: nothing holds the claims
            await placement.remove_allocations(self.db, move_consumer(self.uuid))
            return False
        return True

    async def moved(self, old_host: str | None, new_host: str | None) -> None:
        """Once the record names the guest's new host: the host it left drops its
        firewall rules and floating NAT, the new one takes them (the hosts' own
        refresh after their step ran while the record still named the old host)."""
        if self.deps.network is not None and old_host != new_host:
            await self.deps.network.instance_moved(old_host, new_host)

    async def handed_over(self, migration: Migration, exc: Exception,
                          values: dict[str, Any]) -> None:
        """After the source handed the guest over, a failure (or a server changed
        meanwhile, e.g. by resetState) never undoes it: the record follows the guest
        to the destination (`values`: host, node, ...), ERROR, and the destination's
        claim becomes the instance's (as Nova's post-migration failure handling)."""
        if await self.stuck(migration, exc, values.get("host"), values):
            await placement.move_allocations(self.db, move_consumer(self.uuid), self.uuid)
            await self.moved(migration.source_compute, values.get("host"))


def timed_out(exc: BaseException) -> bool:
    """Whether a step's outcome is unknown (the host may still be working)."""
    return isinstance(exc, MessagingTimeout)


class TaskRunner:
    """The tasks running after their caller got its answer; stop() cancels them."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._guarded(work, name), name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except Exception:  # a task records its own failures; this is a bug's trace
            LOG.exception("Conductor task %s failed", name)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
