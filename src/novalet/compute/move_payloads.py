"""Typed, versioned models of what crosses the bus for moves (migrate, resize, live
migration): the API's request to the conductor, the conductor's request to the
scheduler, its orders to the two compute hosts and their progress reports.

Bump a model's VERSION whenever its fields change (rules in rpc/models.py);
tests/unit/rpc/test_models.py fails until the recorded fingerprint is updated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from novalet.compute.driver_types import GuestSpec, MigrationProgress
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.payloads import InstancePayload, RequestSpec
from novalet.rpc.models import BusModel

# What MoveRequest.kind names: Nova's migration types of the moves the API starts.
MIGRATION = "migration"
RESIZE = "resize"
LIVE_MIGRATION = "live-migration"
MOVE_KINDS = (MIGRATION, RESIZE, LIVE_MIGRATION)


@dataclass
class MoveRequest(BusModel):
    """A move the API accepted (the instance's task_state is set already): what the
    conductor's task needs to schedule and run it."""

    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    kind: str  # one of MOVE_KINDS
    new_flavor: FlavorPayload | None = None  # a resize's flavor copy
    host: str | None = None  # the destination asked for (scheduled there unless `force`)
    force: bool = False  # live migration 2.30-2.67: no scheduler, only the claim
    block_migration: bool | None = None  # live migration; None: "auto"


@dataclass
class MoveSpec(BusModel):
    """A scheduling request for one move: the instance's request spec with the sizes
    wanted at the destination, claimed for `consumer`, never on `ignore_hosts`.

    1.1: its RequestSpec part is 1.2 (a SchedulingGroup part for `group`, whose
    wire form is the dict of before; `group_generation` added).
    """

    VERSION: ClassVar[str] = "1.1"
    spec: RequestSpec
    consumer: str
    ignore_hosts: list[str] = field(default_factory=list)


@dataclass
class MoveOrder(BusModel):
    """One step of a move, for one of its two hosts. `flavor` is the sizes the guest
    has at the end of the step (the new flavor going, the old one coming back).
    Hosts before compute RPC 1.5 get no moves, so no backport is needed."""

    VERSION: ClassVar[str] = "1.0"
    migration_uuid: str
    instance: InstancePayload
    source_host: str
    dest_host: str
    dest_node: str | None
    flavor: FlavorPayload
    power_on: bool = True  # cold moves: start the guest at the end (it was running)
    paused: bool = False  # live migration: the guest was paused
    block_migration: bool = False
    live: bool = False  # a live migration's step

    def guest_spec(self) -> GuestSpec:
        return dataclasses.replace(self.instance, flavor=self.flavor).guest_spec()

    @property
    def uuid(self) -> str:
        return self.instance.uuid


@dataclass
class ProgressReport(BusModel):
    """A running live migration's progress, from its source host, in bytes."""

    VERSION: ClassVar[str] = "1.0"
    migration_uuid: str
    instance_uuid: str
    memory_total: int = 0
    memory_processed: int = 0
    memory_remaining: int = 0
    disk_total: int = 0
    disk_processed: int = 0
    disk_remaining: int = 0

    @classmethod
    def of(cls, migration_uuid: str, instance_uuid: str,
           progress: MigrationProgress) -> ProgressReport:
        return cls(migration_uuid, instance_uuid, progress.memory_total,
                   progress.memory_processed, progress.memory_remaining,
                   progress.disk_total, progress.disk_processed, progress.disk_remaining)
