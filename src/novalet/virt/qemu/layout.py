"""What a guest is on disk: its instance directory and the launch description kept in it.

Everything the driver knows about a guest lives in <instances_path>/<uuid>/, so
a compute service started anew (or a second driver object) finds and controls
the same guests without any other state:

    domain.json         the launch description (GuestConfig) of the guest
    rescue.json         the one used instead while the guest is rescued
    qemu.pid, qmp.sock  the running QEMU and its monitor
    console.log         the serial console (appended across restarts)
    console.json        where the last launch put its consoles: the SPICE and serial
                        ports (chosen before QEMU starts) and the VNC display
    disk, disk.eph0, disk.swap, disk.config, disk.rescue, disk.config.rescue
    suspend.state       saved memory of a suspended guest, suspend.json its facts
    resize/             what revert_resize needs (old domain.json and disks)
    spawning            present while spawn (or a cold move in) has not finished
    live-incoming       with spawning: a live migration's destination (live_moves.py)
    incoming/, nbd.pid  a cold move's disks being received, and their NBD server

A guest that moved to another host is kept as <instances_path>/<uuid>_resize/
until its move is confirmed or reverted (cold_migration.py).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT, EPHEMERAL, SWAP, CONFIG = "disk", "disk.eph0", "disk.swap", "disk.config"
RESCUE, RESCUE_CONFIG = "disk.rescue", "disk.config.rescue"


@dataclass(frozen=True)
class Disk:
    """One block device of the guest."""

    id: str  # QEMU drive id: root, eph0, swap, config, rescue, image
    path: str
    format: str  # qcow2 or raw
    bus: str  # virtio, ide, sata or scsi
    device: str = "disk"  # disk or cdrom
    boot_index: int | None = None
    readonly: bool = False


@dataclass(frozen=True)
class GuestConfig:
    """How to start the guest's QEMU; host-wide choices (accelerator, VNC address) aside."""

    uuid: str
    name: str
    memory_mb: int
    vcpus: int
    machine_type: str
    disks: tuple[Disk, ...]
    mac: str
    vif_model: str | None = "virtio"  # None: no network card
    rng: bool = False
    video: str = "std"
    usb_tablet: bool = False
    kernel: str | None = None
    initrd: str | None = None
    kernel_cmdline: str | None = None
    bases: tuple[str, ...] = ()  # image-cache files the disks or kernel depend on
    image_id: str = ""
    flavor: dict[str, int] = field(default_factory=dict)  # root_gb, ephemeral_gb, swap_mb
    # (tap device, MAC) per NIC on a host network; empty: the [qemu] network fallback
    taps: tuple[tuple[str, str], ...] = ()

    def disk(self, disk_id: str) -> Disk | None:
        return next((d for d in self.disks if d.id == disk_id), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GuestConfig:
        data: dict[str, Any] = json.loads(text)
        data["disks"] = tuple(Disk(**d) for d in data["disks"])
        data["bases"] = tuple(data.get("bases", ()))
        data["taps"] = tuple(tuple(t) for t in data.get("taps", ()))
        return cls(**data)


class InstancePaths:
    """The files of one guest."""

    def __init__(self, instances_path: Path, uuid: str) -> None:
        self.uuid = uuid
        self.dir = instances_path / uuid
        self.config = self.dir / "domain.json"
        self.rescue_config = self.dir / "rescue.json"
        self.pidfile = self.dir / "qemu.pid"
        self.qmp = self.dir / "qmp.sock"
        self.console_log = self.dir / "console.log"
        self.console_record = self.dir / "console.json"
        self.state = self.dir / "suspend.state"
        self.state_meta = self.dir / "suspend.json"
        self.resize = self.dir / "resize"
        self.spawning = self.dir / "spawning"

    def disk(self, name: str) -> Path:
        return self.dir / name

    def active_config_path(self) -> Path:
        return self.rescue_config if self.rescue_config.exists() else self.config

    def load_active(self) -> GuestConfig:
        return GuestConfig.from_json(self.active_config_path().read_text())

    def load(self) -> GuestConfig:
        return GuestConfig.from_json(self.config.read_text())


def write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temp.write_text(text)
    os.replace(temp, path)


def mac_for(uuid: str) -> str:
    """A stable MAC address for the guest's NIC, in the OpenStack range fa:16:3e."""
    digits = uuid.replace("-", "")[-6:].rjust(6, "0")
    return "fa:16:3e:" + ":".join(digits[i:i + 2] for i in range(0, 6, 2))
