"""`novalet down`: end what a stopped cloud left running on this host.

Ctrl-C stops `novalet up` but leaves its guests running (the next start
re-attaches to them), and with them the host networking they use. `down`
ends those: the state dir's QEMU guests (found by the pid files the QEMU
driver writes), then the host networking Novalet made (bridges, taps,
dnsmasq, nftables tables; LinuxNetDriver.teardown) when the state dir shows
the cloud ran the Linux host driver (STATE/networking). It refuses while a
`novalet up|compute|network` still serves the state dir; the Linux driver's
host lock keeps it off the host networking while another cloud's network
service manages it (bridge and table names are host-wide). Running it again,
or with nothing running, is fine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from novalet import config, exceptions
from novalet.network.manager import HostNetDriver, load_driver

LOG = logging.getLogger(__name__)

HOST_COMMANDS = frozenset({"up", "compute", "network"})
"""The `novalet` commands that run guests or host networking."""


class CloudStillRunning(exceptions.Conflict):
    msg_fmt = ("%(what)s still runs on the state dir %(state_dir)s: stop it first "
               "(Ctrl-C, or kill %(pids)s), then run `novalet down` again")


@dataclass(frozen=True)
class CloudProcess:
    """A running `novalet up|compute|network`, and the state dir its command line names
    (None when it names none, e.g. only a --config-file)."""

    pid: int
    command: str
    state_dir: Path | None


def cloud_processes(proc: Path = Path("/proc")) -> list[CloudProcess]:
    """Every running `novalet` process that may hold guests or host networking."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = [a.decode(errors="replace")
                    for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        for index, arg in enumerate(argv[:3]):
            if Path(arg).name == "novalet" and index + 1 < len(argv) \
                    and argv[index + 1] in HOST_COMMANDS:
                found.append(CloudProcess(int(entry.name), argv[index + 1],
                                          _state_dir(argv, entry)))
                break
    return found


def _state_dir(argv: list[str], entry: Path) -> Path | None:
    for index, arg in enumerate(argv):
        value = None
        if arg == "--state-dir" and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--state-dir="):
            value = arg.partition("=")[2]
        if value is not None:
            try:  # relative to that process's working directory
                return (entry / "cwd").resolve() / value if not value.startswith("/") \
                    else Path(value).resolve()
            except OSError:
                return Path(value)
    return None


async def stop_guests(conf: config.Config) -> list[str]:
    """Force off every QEMU guest of the state dir (QMP quit, else SIGKILL); their
    disks stay, and the next `novalet up` shows them SHUTOFF."""
    from novalet.virt.qemu.driver import QemuDriver
    from novalet.virt.qemu.layout import InstancePaths
    driver = QemuDriver(conf)
    stopped = []
    for uuid in await driver.list_instances():
        pid = driver.guests.pid(InstancePaths(driver.instances_path, uuid))
        if pid is None:
            continue
        await driver.power_off(uuid, timeout=0)
        stopped.append(f"stopped guest {uuid} (QEMU pid {pid})")
    return stopped


def is_root() -> bool:
    return os.geteuid() == 0


async def down(conf: config.Config, *, proc: Path = Path("/proc"),
               network_driver: Callable[[config.Config], HostNetDriver] = load_driver
               ) -> list[str]:
    """Stop the state dir's guests and remove the host networking; what was done, a
    line each. CloudStillRunning while a novalet process serves the state dir."""
    state_dir = conf.state_path.resolve()
    running = cloud_processes(proc)
    own = [p for p in running if p.state_dir == state_dir]
    if own:
        raise CloudStillRunning(what=" and ".join(sorted({f"novalet {p.command}" for p in own})),
                                state_dir=state_dir,
                                pids=" ".join(str(p.pid) for p in own))
    report = await stop_guests(conf)
    if not is_root():
        report.append("left the host networking alone: removing bridges, dnsmasq and "
                      "nftables tables needs root")
        return report
    networking = conf.state_path / "networking"
    if not networking.is_dir():  # this cloud never ran the Linux host driver
        report.append(f"no host networking of this cloud to remove (no {networking})")
        return report
    # The host lock of the Linux driver refuses (HostNetworkTaken, naming it) while
    # another cloud's network service manages the host; `[network] host_driver` noop
    # (fake guests) has nothing to remove.
    driver = network_driver(conf)
    try:
        await driver.teardown()
        report.append("removed Novalet's bridges, taps, dnsmasq and nftables tables "
                      "(if there were any)")
    except exceptions.NovaletError as exc:
        report.append(f"host networking not (fully) removed: {exc.message}")
    finally:
        await driver.close()
    return report
