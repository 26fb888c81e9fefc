"""`novalet down`: end what a stopped cloud left running on this host.

Ctrl-C stops `novalet up` but leaves its guests running (the next start
re-attaches to them), and with them the host networking they use. `down`
ends those: the state dir's QEMU guests (found by the pid files the QEMU
driver writes), then the host networking Novalet made (bridges, taps,
dnsmasq, nftables tables; LinuxNetDriver.teardown) when the state dir shows
the cloud ran the Linux host driver (STATE/networking). It refuses while a
`novalet up|compute|network` still serves the state dir (holds its lock,
service/state_lock.py, whatever way it was given the state dir); the Linux driver's
host lock keeps it off the host networking while another cloud's network
service manages it (bridge and table names are host-wide). Running it again,
or with nothing running, is fine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from novalet import config, exceptions
from novalet.network.manager import HostNetDriver, load_driver
from novalet.service import state_lock

LOG = logging.getLogger(__name__)


class CloudStillRunning(exceptions.Conflict):
    msg_fmt = ("%(what)s (pid %(pid)s) still runs on the state dir %(state_dir)s: stop it "
               "first (Ctrl-C, or kill %(pid)s), then run `novalet down` again")


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


async def down(conf: config.Config, *,
               network_driver: Callable[[config.Config], HostNetDriver] = load_driver
               ) -> list[str]:
    """Stop the state dir's guests and remove the host networking; what was done, a
    line each. CloudStillRunning while a novalet process serves the state dir (holds
    one of its service locks, service/state_lock.py); down holds them while it runs,
    so no cloud starts on the state dir meanwhile."""
    if not conf.state_path.is_dir():  # nothing ever ran here (and down makes nothing)
        return await _down(conf, network_driver)
    locks = state_lock.StateDirLocks(conf.state_path.resolve(), "down")
    try:
        locks.acquire()
    except state_lock.StateDirInUse as exc:
        raise CloudStillRunning(what=exc.kwargs["holder"], pid=exc.kwargs["pid"],
                                state_dir=exc.kwargs["state_dir"]) from None
    try:
        return await _down(conf, network_driver)
    finally:
        locks.release()


async def _down(conf: config.Config,
                network_driver: Callable[[config.Config], HostNetDriver]) -> list[str]:
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
