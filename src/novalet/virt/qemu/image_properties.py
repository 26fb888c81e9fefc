"""The image properties the QEMU driver reads (hw_disk_bus, hw_vif_model, ...): which
it honours, their allowed values, and a log line for each one it ignores."""

from __future__ import annotations

import logging
from typing import Any

from novalet.virt.driver import VirtDriverError

LOG = logging.getLogger(__name__)

HONOURED_PROPERTIES = frozenset({
    "hw_disk_bus", "hw_cdrom_bus", "hw_vif_model", "hw_machine_type", "hw_rng_model",
    "hw_video_model", "hw_pointer_model", "kernel_id", "ramdisk_id", "os_command_line"})


def choice(props: dict[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = str(props.get(name) or default)
    if value not in allowed:
        raise VirtDriverError(reason=f"image property {name}={value!r} is not supported; "
                                     f"use one of {', '.join(allowed)}")
    return value


def default_cmdline(disk_bus: str) -> str:
    root = "/dev/vda" if disk_bus == "virtio" else "/dev/sda"
    return f"root={root} console=tty0 console=ttyS0"


def log_ignored(uuid: str, props: dict[str, Any]) -> None:
    if "os_type" in props:
        LOG.info("Instance %s: image property os_type=%s is ignored by the QEMU driver", uuid,
                 props["os_type"])
    for name in sorted(props):
        if name.startswith("hw_") and name not in HONOURED_PROPERTIES:
            LOG.info("Instance %s: image property %s=%s is not supported; ignored", uuid,
                     name, props[name])
