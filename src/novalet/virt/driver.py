"""The virt driver interface: the one seam between a compute host and its hypervisor.

Guarantees every driver keeps:
- spawn either leaves a running guest or raises, having cleaned up after itself;
- destroy succeeds when the guest is already gone;
- power operations are idempotent (stopping a stopped guest is not an error);
- get_info raises InstanceNotFoundOnHost for a guest the hypervisor doesn't have.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from novalet import exceptions
from novalet.compute.diagnostics import Diagnostics as Diagnostics
from novalet.compute.diagnostics import DiagnosticsNotSupported
from novalet.compute.driver_types import ConsoleUnavailable as ConsoleUnavailable
from novalet.compute.driver_types import DriverCapabilities as DriverCapabilities
from novalet.compute.driver_types import GuestSpec as GuestSpec
from novalet.compute.driver_types import ImageMeta as ImageMeta
from novalet.compute.driver_types import InstanceNotFoundOnHost as InstanceNotFoundOnHost
from novalet.compute.driver_types import LiveMigrationAborted as LiveMigrationAborted
from novalet.compute.driver_types import MigrationProgress as MigrationProgress
from novalet.compute.move_payloads import MoveTarget as MoveTarget
from novalet.compute.states import PowerState
from novalet.console.types import ConsoleTarget
from novalet.network.model import Vif
from novalet.virt import host_uptime


class VirtDriverError(exceptions.NovaletError):
    msg_fmt = "Hypervisor error: %(reason)s"


@dataclass(frozen=True)
class HostResources:
    """What the host offers, before allocation ratios."""

    hypervisor_hostname: str
    hypervisor_type: str
    vcpus: int
    memory_mb: int
    local_gb: int
    cpu_info: dict[str, Any] = field(default_factory=dict)
    hypervisor_version: int = 0  # as Nova encodes it: major * 1000000 + minor * 1000 + micro


@dataclass(frozen=True)
class GuestInfo:
    power_state: PowerState


class ImageFetcher(abc.ABC):
    """How a driver gets image data without a database: from the image service."""

    @abc.abstractmethod
    async def fetch(self, image: ImageMeta, dest: str) -> None:
        """Stream the image's data to the file `dest`; raise if it can't."""

    @abc.abstractmethod
    async def upload(self, image_id: str, source: str, disk_format: str) -> None:
        """Upload the file `source` as the data of the (queued) image `image_id`."""

    async def rotate_backups(self, instance_uuid: str, backup_type: str,
                             rotation: int, owner: str) -> list[str]:
        """Delete the instance's oldest `backup_type` backup images (owned by project
        `owner`, the instance's) beyond the newest `rotation` (0: all of them); the
        ids deleted. Not every fetcher can."""
        raise NotImplementedError("this image fetcher can't delete backups")


class ComputeDriver(abc.ABC):
    """Base of every hypervisor driver."""

    # What this driver can do (optional operations, displays); each driver declares
    # its own. The host reports it with its compute node, and the API refuses what
    # a server's host cannot do before anything starts.
    capabilities: ClassVar[DriverCapabilities] = DriverCapabilities()

    async def get_host_uptime(self) -> str:
        """The host's `uptime` line (os-hypervisors' uptime). By default the machine
        this runs on, which is the hypervisor host for drivers that run guests here."""
        return host_uptime.host_uptime()

    @abc.abstractmethod
    async def init_host(self, host: str) -> None:
        """Prepare the hypervisor for use; called once when compute starts."""

    def adopted_at_start(self) -> set[str]:
        """Guests init_host kept that no record may name this host for yet (a live
        migration's destination restarted before its finish step: the guest's only
        copy). Start-up recovery never destroys them as unknown. Most drivers keep
        nothing of the kind."""
        return set()

    async def cleanup_host(self) -> None:
        """Release what the driver holds in this process when compute stops (guests
        keep running). Most drivers hold nothing."""
        return None

    @abc.abstractmethod
    async def get_available_resource(self) -> HostResources:
        """The host's total resources."""

    @abc.abstractmethod
    async def list_instances(self) -> list[str]:
        """UUIDs of every guest the hypervisor has, running or not."""

    @abc.abstractmethod
    async def spawn(self, spec: GuestSpec) -> None:
        """Create and start a guest; on failure leave nothing behind and raise."""

    @abc.abstractmethod
    async def destroy(self, uuid: str) -> None:
        """Stop the guest if running and remove it and its disks, with what an older
        move of it left beside them; what a pending revert needs (kept while the guest
        is on another host) stays. Gone already is fine."""

    @abc.abstractmethod
    async def reboot(self, uuid: str, hard: bool) -> None:
        """Soft reboot asks the guest; hard reboot resets it."""

    @abc.abstractmethod
    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        """Ask the guest to shut down, forcing it after `timeout` seconds (0: force now)."""

    @abc.abstractmethod
    async def power_on(self, uuid: str) -> None:
        """Start a stopped guest."""

    @abc.abstractmethod
    async def pause(self, uuid: str) -> None:
        """Freeze the guest's vCPUs in memory."""

    @abc.abstractmethod
    async def unpause(self, uuid: str) -> None:
        """Thaw a paused guest."""

    @abc.abstractmethod
    async def suspend(self, uuid: str) -> None:
        """Save the guest's state to disk and stop it."""

    @abc.abstractmethod
    async def resume(self, uuid: str) -> None:
        """Restore a suspended guest."""

    @abc.abstractmethod
    async def get_info(self, uuid: str) -> GuestInfo:
        """The guest's current power state."""

    async def get_console_output(self, uuid: str) -> str:
        """The guest's serial console log."""
        return ""

    async def get_console(self, uuid: str, kind: str) -> ConsoleTarget:
        """Where the running guest's display of `kind` (vnc, spice or serial) listens,
        as the console proxies reach it. ConsoleUnavailable when this host gives its
        guests no such display; GuestNotRunning-like errors when the guest is off."""
        raise ConsoleUnavailable(console_type=kind)

    async def get_diagnostics(self, uuid: str) -> Diagnostics:
        """Figures of the running guest: its state, cpu, memory, disks and NICs
        (the compute manager asks only while it runs). Without: a 501."""
        raise DiagnosticsNotSupported(uuid=uuid, why="has a hypervisor driver without them")

    async def manage_image_cache(self) -> list[str]:
        """Remove cached base images no guest has used for the configured time;
        the ids removed. Drivers without a cache have nothing to do."""
        return []

    # Optional operations: a driver that can't do one says so with a clear error.

    async def snapshot(self, uuid: str, dest: str) -> str:
        """Write a standalone copy of the root disk to `dest`; its disk format."""
        raise self._unsupported("snapshot")

    async def rescue(self, uuid: str, rescue: GuestSpec) -> None:
        """Boot `rescue`'s image with the guest's own root disk attached second."""
        raise self._unsupported("rescue")

    async def unrescue(self, uuid: str) -> None:
        """Boot the guest from its own disk again."""
        raise self._unsupported("unrescue")

    async def rebuild(self, spec: GuestSpec, power_on: bool = True) -> None:
        """Replace the root disk with one from spec.image; same uuid. Booted only when
        `power_on`: a stopped server stays off (Nova rebuilds a SHUTOFF server and
        leaves it SHUTOFF), and is never started meanwhile."""
        raise self._unsupported("rebuild")

    async def resize(self, uuid: str, spec: GuestSpec) -> None:
        """Give the guest spec's sizes, keeping what revert needs. A guest that was
        running runs again afterwards; a stopped one stays stopped (Nova's
        resize of a SHUTOFF server leaves it off)."""
        raise self._unsupported("resize")

    async def confirm_resize(self, uuid: str) -> None:
        """Drop what revert_resize would have needed."""
        raise self._unsupported("confirm_resize")

    async def revert_resize(self, uuid: str) -> None:
        """Go back to the sizes and disk from before resize, running only if the
        guest ran before the resize."""
        raise self._unsupported("revert_resize")

    # Moves to another host (cold migration, resize elsewhere, live migration). The
    # conductor drives both ends and relays between them: the destination prepares
    # and answers a MoveTarget (where it listens), the source connects there; no
    # other host-to-host path. supports_migrate and supports_live_migrate say
    # whether a driver has them. A destination's destroy(uuid) also closes what
    # its prepare step opened (the rollback of a move that failed).

    async def prepare_move_in(self, spec: GuestSpec) -> MoveTarget:
        """Destination of a cold move, first: make ready to receive the guest's disks
        (for spec's sizes); where the source sends them. Nothing to open: empty."""
        return MoveTarget()

    async def migrate_disk_and_power_off(self, uuid: str, dest_host: str,
                                         target: MoveTarget) -> None:
        """Source of a cold move: stop the guest and send its disks to `target` on
        `dest_host`, keeping what finish_revert_migration needs until
        confirm_migration."""
        raise self._unsupported("migrate_disk_and_power_off")

    async def finish_migration(self, spec: GuestSpec, power_on: bool) -> None:
        """Destination of a cold move: create the guest from the disks received,
        with spec's sizes; started only when `power_on`."""
        raise self._unsupported("finish_migration")

    async def confirm_migration(self, uuid: str) -> None:
        """Source, after confirm: drop what revert would have needed. Nothing left
        is fine."""
        raise self._unsupported("confirm_migration")

    async def finish_revert_migration(self, spec: GuestSpec, power_on: bool) -> None:
        """Source, after revert: bring the guest back from what it kept (the
        destination's copy is destroyed already); started only when `power_on`. After
        a move that failed before the guest left, the guest here stays as it is."""
        raise self._unsupported("finish_revert_migration")

    async def pre_live_migration(self, spec: GuestSpec, block_migration: bool,
                                 paused: bool) -> MoveTarget:
        """Destination, before the copy (its taps are plugged): make ready to take the
        guest's memory (and, with `block_migration`, its disks); where the source
        sends them. Nothing to open: empty."""
        return MoveTarget()

    async def live_migration(self, uuid: str, dest_host: str, block_migration: bool,
                             progress: Callable[[MigrationProgress], Awaitable[None]],
                             target: MoveTarget) -> None:
        """Source: copy the running guest to `target` on `dest_host`, reporting
        `progress` after each round; return once it runs there and is gone here.
        Raise LiveMigrationAborted when live_migration_abort stopped it (the guest
        keeps running here), LiveMigrationFailedAfterHandOver on a failure once the
        guest ran at the destination (post-copy: nothing may destroy it there),
        anything else on failure (the guest keeps running here). `progress` reports
        must not hold the job up; MigrationProgress.post_copy says the switch."""
        raise self._unsupported("live_migration")

    async def live_migration_force_complete(self, uuid: str) -> None:
        """Make a running live migration finish now (pause the guest for the last
        copy)."""
        raise self._unsupported("live_migration_force_complete")

    async def live_migration_abort(self, uuid: str) -> None:
        """Stop a running live migration; the guest stays on this host. An abort that
        comes before the job started (the conductor marks it running first) aborts it
        as it starts. Once the destination may run the guest (switch-over, post-copy)
        it is refused with LiveMigrationNotAbortable (400)."""
        raise self._unsupported("live_migration_abort")

    async def post_live_migration_at_destination(self, spec: GuestSpec,
                                                 paused: bool) -> None:
        """Destination: the guest that live_migration brought here, now this host's
        (running, or paused when it was paused at the source)."""
        raise self._unsupported("post_live_migration_at_destination")

    async def attach_interface(self, uuid: str, vif: Vif) -> None:
        """Hot-plug a NIC whose tap is plugged already; kept across restarts."""
        raise self._unsupported("attach_interface")

    async def detach_interface(self, uuid: str, vif: Vif) -> None:
        raise self._unsupported("detach_interface")

    async def set_admin_password(self, uuid: str, password: str) -> None:
        """Set the guest's administrator password (through an agent in the guest);
        raises when the guest can't take it. Never log the password."""
        raise self._unsupported("set_admin_password")

    async def trigger_crash_dump(self, uuid: str) -> None:
        """Inject a non-maskable interrupt, so a guest set up for it dumps its kernel;
        GuestNotRunning-like errors when the guest is off."""
        raise self._unsupported("trigger_crash_dump")

    def _unsupported(self, what: str) -> VirtDriverError:
        return VirtDriverError(reason=f"{type(self).__name__} does not support {what}")
