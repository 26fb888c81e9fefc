"""Choosing the accelerator: KVM when it really works, TCG otherwise.

/dev/kvm alone proves nothing (it exists on hosts without nested
virtualization, where a KVM guest hangs). `auto` asks for three things: a
usable /dev/kvm, a vmx or svm flag in /proc/cpuinfo, and a probe guest that
boots through the BIOS under KVM and exits by itself within a few seconds.
The probe runs through the command door with a hard timeout, so detection
never hangs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.commands import CommandFailed, CommandRunner, CommandTimedOut

LOG = logging.getLogger(__name__)

KVM = "kvm"
TCG = "tcg"
VIRT_TYPES = ("auto", "kvm", "qemu")

PROBE_TIMEOUT = 3.0

# A boot sector that writes 0 to the isa-debug-exit port, which makes QEMU exit
# with status (0 << 1) | 1 = 1:  mov dx,0xf4; mov al,0; out dx,al; hlt; jmp $-3
_PROBE_CODE = bytes([0xBA, 0xF4, 0x00, 0xB0, 0x00, 0xEE, 0xF4, 0xEB, 0xFD])
PROBE_SECTOR = _PROBE_CODE + bytes(510 - len(_PROBE_CODE)) + b"\x55\xaa"
_PROBE_EXIT_STATUS = 1


class AccelUnavailable(VirtDriverError):
    msg_fmt = "virt_type = kvm, but KVM is not usable on this host: %(reason)s"


def kvm_device_usable(dev: Path = Path("/dev/kvm")) -> bool:
    return dev.exists() and os.access(dev, os.R_OK | os.W_OK)


def cpu_has_virt_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            if flags & {"vmx", "svm"}:
                return True
    return False


async def kvm_probe(runner: CommandRunner, qemu: str, workdir: str | None = None) -> str | None:
    """Boot the probe sector under KVM; None when it worked, else why not."""
    with tempfile.TemporaryDirectory(prefix="novalet-kvm-probe-", dir=workdir) as tmp:
        disk = Path(tmp) / "probe.img"
        disk.write_bytes(PROBE_SECTOR)
        argv = [qemu, "-machine", "pc", "-accel", "kvm", "-nodefaults", "-no-user-config",
                "-display", "none", "-m", "16", "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-drive", f"file={disk},format=raw,if=ide"]
        try:
            result = await runner.run(argv, timeout=PROBE_TIMEOUT, check=False)
        except CommandTimedOut:
            return f"a KVM probe guest did not finish within {PROBE_TIMEOUT:.0f}s"
        except CommandFailed as exc:  # pragma: no cover - check=False never raises it
            return str(exc)
    if result.returncode != _PROBE_EXIT_STATUS:
        return (f"the KVM probe guest ended with status {result.returncode}: "
                f"{result.stderr.strip()[-300:]}")
    return None


async def detect(virt_type: str, runner: CommandRunner, qemu: str,
                 dev: Path = Path("/dev/kvm"), cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The accelerator for guests: "kvm" or "tcg", per the [qemu] virt_type option."""
    if virt_type not in VIRT_TYPES:
        raise VirtDriverError(reason=f"[qemu] virt_type must be one of {', '.join(VIRT_TYPES)}, "
                                     f"not {virt_type!r}")
    if virt_type == "qemu":
        LOG.info("virt_type = qemu: guests run under TCG (software emulation)")
        return TCG
    why_not: str | None
    if not kvm_device_usable(dev):
        why_not = f"{dev} is missing or not readable and writable"
    elif not cpu_has_virt_flags(cpuinfo):
        why_not = "the CPU shows no vmx or svm flag (no nested virtualization)"
    else:
        why_not = await kvm_probe(runner, qemu)
    if why_not is None:
        LOG.info("KVM works on this host: guests run accelerated")
        return KVM
    if virt_type == "kvm":
        raise AccelUnavailable(reason=why_not)
    LOG.info("KVM not usable (%s): guests run under TCG", why_not)
    return TCG
