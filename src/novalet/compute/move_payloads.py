"""Typed, versioned models of what crosses the bus for moves (migrate, resize, live
migration): the API's request to the conductor, the conductor's request to the
scheduler, its orders to the two compute hosts and their progress reports.

Bump a model's VERSION whenever its fields change (rules in rpc/models.py);
tests/unit/rpc/test_models.py fails until the recorded fingerprint is updated.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from typing import ClassVar

from novalet.compute.driver_types import GuestSpec, MigrationProgress
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.payloads import InstancePayload, RequestSpec
from novalet.rpc.models import BusModel, IncompatibleMessage

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


_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_DRIVE_ID = re.compile(r"^[a-z][a-z0-9]{0,15}$")


@dataclass
class MoveTarget(BusModel):
    """Where a move's destination host takes the guest, as it answered its prepare
    step (cold: prep_move; live: pre_live_migration); the conductor hands it to the
    source in its MoveOrder. Parts, never URIs: the source builds what it connects
    to from them (QEMU would run the command of an `exec:` migration URI), after
    `check()`. Empty for a driver that moves guests without a network path
    (the fake driver)."""

    VERSION: ClassVar[str] = "1.0"
    CHECKED: ClassVar[bool] = True  # a compute host's answer
    address: str = ""  # the destination's migration address: an IP or a host name
    memory_port: int | None = None  # live: the incoming QEMU's migration port
    nbd_port: int | None = None  # the NBD server taking the guest's disks
    disks: list[str] = field(default_factory=list)  # drive ids exported (export = id)
    # Of `disks`, those the destination made over the same base image: the source
    # copies only the guest's own layer of them.
    overlays: list[str] = field(default_factory=list)

    def check(self) -> MoveTarget:
        """Itself, when every part is what it claims to be; IncompatibleMessage else."""
        def bad(reason: str) -> IncompatibleMessage:
            return IncompatibleMessage(model="MoveTarget", version=self.VERSION, reason=reason)
        if not self.address:
            if self.memory_port or self.nbd_port or self.disks:
                raise bad("ports without an address")
            return self
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            if not _HOST_NAME.match(self.address):
                raise bad(f"address {self.address!r} is neither an IP nor a host name") \
                    from None
        else:  # a zone id may hold any character, URI syntax included
            if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
                raise bad(f"address {self.address!r} has a zone id")
        for port in (self.memory_port, self.nbd_port):
            if port is not None and not 0 < port < 65536:
                raise bad(f"port {port} is out of range")
        for drive in (*self.disks, *self.overlays):
            if not _DRIVE_ID.match(drive):
                raise bad(f"drive id {drive!r} is not one")
        if not set(self.overlays) <= set(self.disks):
            raise bad("an overlay disk that is not exported")
        if self.disks and self.nbd_port is None:
            raise bad("disks without an NBD port")
        return self


def uri_host(address: str) -> str:
    """A checked address as the host part of a URI (an IPv6 address in brackets)."""
    return f"[{address}]" if ":" in address else address


@dataclass
class MoveOrder(BusModel):
    """One step of a move, for one of its two hosts. `flavor` is the sizes the guest
    has at the end of the step (the new flavor going, the old one coming back).
    Hosts before compute RPC 1.5 get no moves, so no backport is needed.

    1.1: `target`, what the destination prepared (compute RPC 1.7).
    """

    VERSION: ClassVar[str] = "1.1"
    ADDED: ClassVar[dict[str, str]] = {"target": "1.1"}
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
    target: MoveTarget | None = None  # the source's steps: where the destination waits

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
