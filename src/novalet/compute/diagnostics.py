"""A running guest's diagnostics: what its virt driver measures, as it crosses the bus.

Drivers fill a Diagnostics (the fake driver fixed figures, the QEMU driver what
QMP and the host's counters say); the compute API shows it in the standard form
of microversion 2.48 or, below, flattened into the libvirt-style keys Nova's API
gave before (api/compute/server_diagnostics.py). It lives here, not in virt/,
because the API side reads it too.

`driver` takes the values of Nova's API (libvirt, xenapi, vmwareapi, ironic,
hyperv): clients validate it against them. A QEMU guest reports "libvirt", the
name that API gives the QEMU/KVM family; `hypervisor` says which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from novalet import exceptions
from novalet.rpc.models import BusModel

# Power states as Nova's diagnostics name them.
STATES = ("pending", "running", "paused", "shutdown", "crashed", "suspended")
# What Nova's API accepts as `driver`.
API_DRIVER = "libvirt"


class DiagnosticsNotSupported(exceptions.NovaletError):
    """Nova's 501 for a driver (or a host release) without diagnostics."""

    msg_fmt = ("The requested functionality is not supported: diagnostics of instance "
               "%(uuid)s (its host %(why)s).")
    code = 501


class GuestNotRunning(exceptions.Conflict):
    """Diagnostics are taken of a running guest only (Nova's 409)."""

    msg_fmt = ("Cannot 'get_diagnostics' instance %(uuid)s while it is in power state "
               "%(state)s")


class InstanceNotReady(exceptions.Conflict):
    msg_fmt = "Instance %(uuid)s is not ready: it has no host yet"


@dataclass
class CpuDiagnostics(BusModel):
    VERSION = "1.0"
    id: int | None = None
    time: int | None = None  # nanoseconds of host CPU time
    utilisation: int | None = None  # percent


@dataclass
class NicDiagnostics(BusModel):
    """Counters as the guest sees them (what it received is rx)."""

    VERSION = "1.0"
    name: str | None = None  # the host's device (a tap), for the pre-2.48 keys
    mac_address: str | None = None
    rx_octets: int | None = None
    rx_errors: int | None = None
    rx_drop: int | None = None
    rx_packets: int | None = None
    rx_rate: int | None = None
    tx_octets: int | None = None
    tx_errors: int | None = None
    tx_drop: int | None = None
    tx_packets: int | None = None
    tx_rate: int | None = None


@dataclass
class DiskDiagnostics(BusModel):
    VERSION = "1.0"
    name: str | None = None  # the driver's name of the disk, for the pre-2.48 keys
    read_bytes: int | None = None
    read_requests: int | None = None
    write_bytes: int | None = None
    write_requests: int | None = None
    errors_count: int | None = None


@dataclass
class MemoryDiagnostics(BusModel):
    VERSION = "1.0"
    maximum: int | None = None  # MiB the guest has
    used: int | None = None  # MiB it uses now


@dataclass
class Diagnostics(BusModel):
    VERSION = "1.0"
    state: str  # one of STATES
    driver: str
    hypervisor: str | None = None
    hypervisor_os: str | None = None
    uptime: int | None = None  # seconds
    config_drive: bool = False
    memory_details: MemoryDiagnostics = field(default_factory=MemoryDiagnostics)
    cpu_details: list[CpuDiagnostics] = field(default_factory=list)
    nic_details: list[NicDiagnostics] = field(default_factory=list)
    disk_details: list[DiskDiagnostics] = field(default_factory=list)
