"""Facts about the hypervisor host the QEMU driver reports: memory, CPU, QEMU's version."""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Any

from novalet.virt.driver import VirtDriverError


def memory_mb(meminfo: Path = Path("/proc/meminfo")) -> int:
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise VirtDriverError(reason="/proc/meminfo shows no MemTotal")


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    info: dict[str, Any] = {"arch": platform.machine()}
    try:
        text = cpuinfo.read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and "model" not in info:
            info["model"] = value.strip()
        elif key == "vendor_id" and "vendor" not in info:
            info["vendor"] = value.strip()
        elif key == "flags" and "features" not in info:
            info["features"] = sorted(value.split())
    return info


def parse_qemu_version(text: str) -> int:
    """'QEMU emulator version 7.2.22 (Debian …)' -> 7002022; 0 without a version."""
    match = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return 0
    major, minor, micro = (int(g or 0) for g in match.groups())
    return major * 1000000 + minor * 1000 + micro
