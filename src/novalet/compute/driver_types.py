"""What the API side and the compute host share about the virt driver interface.

The guest spec and image meta a host hands its driver, the errors a host reports
back over the bus, and the driver's capabilities as the host reports them. They
live here, not in `virt/`, because the API side needs them and `api/` (with the
domain layer it calls) never imports `virt/` (an import contract in `make lint`);
`virt.driver` re-exports them, so drivers name them from there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from novalet import exceptions


class InstanceNotFoundOnHost(exceptions.NotFound):
    msg_fmt = "Instance %(uuid)s not found on this host."


class ConsoleUnavailable(exceptions.Invalid):
    """This host gives its guests no display of that kind (turned off, or a driver
    without one)."""

    msg_fmt = "Unavailable console type %(console_type)s."


class LiveMigrationAborted(exceptions.NovaletError):
    msg_fmt = "Live migration of instance %(uuid)s was aborted."
    code = 409


class LiveMigrationNotAbortable(exceptions.Invalid):
    """Too late to abort: the destination may run the guest already (400, as Nova
    answers an abort of a migration past `running`)."""

    msg_fmt = ("The live migration of %(uuid)s can't be aborted any more: %(reason)s; "
               "wait for it to end")


class LiveMigrationFailedAfterHandOver(exceptions.NovaletError):
    """The live migration failed after the guest began to run at the destination
    (post-copy): taking it back there would destroy the only running copy. The
    conductor treats it as a failure after the hand-over."""

    msg_fmt = ("Live migration of %(uuid)s failed after the guest began to run on "
               "%(dest)s (post-copy): %(reason)s; the guest is left to its destination")


POST_COPY_STATUS = "running (post-copy)"
"""Nova's status of a live migration once it switched to post-copy (the guest runs at
its destination): neither abort nor force-complete take it then."""


@dataclass(frozen=True)
class MigrationProgress:
    """How far a live migration got, in bytes (what /servers/{id}/migrations shows)."""

    memory_total: int = 0
    memory_processed: int = 0
    memory_remaining: int = 0
    disk_total: int = 0
    disk_processed: int = 0
    disk_remaining: int = 0
    post_copy: bool = False  # the guest runs at the destination, its memory follows


@dataclass(frozen=True)
class ImageMeta:
    """An image as the image service describes it (enough to fetch and verify it)."""

    id: str
    name: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    min_disk: int = 0
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GuestSpec:
    """Everything a driver needs to create one guest."""

    uuid: str
    name: str
    hostname: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    swap_mb: int
    image_ref: str
    user_data: str | None = None  # base64, as the API took it
    key_data: str | None = None
    key_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    image: ImageMeta | None = None
    config_drive: bool = False
    project_id: str = ""
    availability_zone: str | None = None
    network_info: list[dict[str, Any]] = field(default_factory=list)  # network.model.Vif dicts


@dataclass(frozen=True)
class DriverCapabilities:
    """What a virt driver can do, declared as data (never probed).

    Each flag answers for one optional part of the driver interface. A compute host
    reports its driver's capabilities with its compute node record (through the
    conductor); the domain layer refuses an action the server's host cannot do
    before it changes any state. Flags a host does not report (an older release)
    count as supported: the host itself is then the one to refuse.
    """

    supports_reboot: bool = True
    supports_pause: bool = True
    supports_suspend: bool = True
    supports_snapshot: bool = False
    supports_rescue: bool = False
    supports_rebuild: bool = False
    supports_resize: bool = False
    supports_migrate: bool = False  # cold moves to another host (migrate, resize)
    supports_live_migrate: bool = False
    supports_attach_interface: bool = False
    supports_vnc_console: bool = False
    supports_spice_console: bool = False
    supports_serial_console: bool = False
    # changePassword: the guest must run an agent that sets it (409 otherwise, as Nova)
    supports_set_admin_password: bool = False
    supports_trigger_crash_dump: bool = False  # an NMI into the guest

    def to_dict(self) -> dict[str, bool]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DriverCapabilities:
        """Capabilities as a host reported them. Unknown keys (a newer host) are
        dropped; missing ones (an older host, or none reported) count as supported."""
        data = data or {}
        return cls(**{f.name: bool(data.get(f.name, True)) for f in dataclasses.fields(cls)})

    def supports(self, flag: str) -> bool:
        value = getattr(self, flag)
        assert isinstance(value, bool), flag
        return value
