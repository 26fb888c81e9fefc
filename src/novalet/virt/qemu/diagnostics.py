"""Diagnostics of a running QEMU guest, measured rather than made up.

- vCPUs: QMP query-cpus-fast names each vCPU's host thread; the thread's user
  and system time (/proc/<pid>/task/<tid>/stat) is the vCPU's time.
- Disks: QMP query-blockstats, per drive id (root, eph0, swap, config...).
- Memory: the guest's configured size is the maximum (no balloon device);
  what QEMU holds resident (VmRSS) is what is used, at most the maximum.
- NICs: the host's counters of each guest's tap (/sys/class/net/<tap>/statistics),
  turned round: what the tap transmits the guest received.
- Uptime: how long its QEMU has run.

The reads of /proc and /sys go through HostCounters, rooted so that unit tests
give it a directory of their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from novalet.compute.states import PowerState
from novalet.virt.driver import Diagnostics
from novalet.compute import diagnostics as diags
from novalet.virt.qemu.guest import Guests, power_state_of
from novalet.virt.qemu.layout import GuestConfig, InstancePaths

_STATE_NAMES = {PowerState.NOSTATE: "pending", PowerState.RUNNING: "running",
                PowerState.PAUSED: "paused", PowerState.SHUTDOWN: "shutdown",
                PowerState.CRASHED: "crashed", PowerState.SUSPENDED: "suspended"}
_NIC_COUNTERS = ("bytes", "packets", "errors", "dropped")


class HostCounters:
    """The host's figures of a guest's QEMU process and taps: the one door to them."""

    def __init__(self, proc: Path = Path("/proc"),
                 net: Path = Path("/sys/class/net")) -> None:
        self.proc = proc
        self.net = net
        self.ticks = os.sysconf("SC_CLK_TCK")

    def _stat(self, path: Path) -> list[str] | None:
        """The fields of a stat file after the command name (which may hold spaces),
        the first being field 3 (state); None when the process or thread is gone."""
        try:
            text = path.read_text()
        except OSError:
            return None
        return text[text.rfind(")") + 2:].split()

    def thread_cpu_ns(self, pid: int, tid: int) -> int | None:
        fields = self._stat(self.proc / str(pid) / "task" / str(tid) / "stat")
        if fields is None or len(fields) < 13:
            return None
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks * 1_000_000_000 // self.ticks

    def uptime_s(self, pid: int) -> int | None:
        fields = self._stat(self.proc / str(pid) / "stat")
        try:
            host_up = float((self.proc / "uptime").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None
        if fields is None or len(fields) < 20:
            return None
        return max(0, int(host_up - int(fields[19]) / self.ticks))  # starttime (field 22)

    def rss_mib(self, pid: int) -> int | None:
        try:
            lines = (self.proc / str(pid) / "status").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024  # kB
        return None

    def nic(self, tap: str) -> dict[str, int] | None:
        """The tap's counters ({rx,tx}_{bytes,packets,errors,dropped}), None if absent."""
        stats = self.net / tap / "statistics"
        try:
            return {f"{way}_{name}": int((stats / f"{way}_{name}").read_text())
                    for way in ("rx", "tx") for name in _NIC_COUNTERS}
        except (OSError, ValueError):
            return None


async def collect(guests: Guests, paths: InstancePaths, config: GuestConfig,
                  hypervisor: str, counters: HostCounters) -> Diagnostics:
    """What the guest's QEMU and the host say of it now (the guest must run)."""
    pid = guests.pid(paths)
    status = await guests.execute(paths, "query-status")
    cpus = await guests.execute(paths, "query-cpus-fast")
    blocks = await guests.execute(paths, "query-blockstats")
    rss = counters.rss_mib(pid) if pid else None
    return Diagnostics(
        state=_STATE_NAMES[power_state_of(status.get("status", ""))],
        driver=diags.API_DRIVER, hypervisor=hypervisor, hypervisor_os="linux",
        uptime=counters.uptime_s(pid) if pid else None,
        config_drive=config.disk("config") is not None,
        memory_details=diags.MemoryDiagnostics(
            config.memory_mb, None if rss is None else min(rss, config.memory_mb)),
        cpu_details=[_cpu(c, pid, counters) for c in cpus],
        disk_details=[_disk(b) for b in blocks if config.disk(b.get("device", ""))],
        nic_details=_nics(config, counters))


def _cpu(cpu: dict[str, Any], pid: int | None, counters: HostCounters
         ) -> diags.CpuDiagnostics:
    tid = cpu.get("thread-id")
    time = counters.thread_cpu_ns(pid, int(tid)) if pid and tid else None
    return diags.CpuDiagnostics(id=cpu.get("cpu-index"), time=time)


def _disk(block: dict[str, Any]) -> diags.DiskDiagnostics:
    stats = block.get("stats", {})
    failed = [stats.get(k) for k in ("failed_rd_operations", "failed_wr_operations",
                                     "failed_flush_operations")]
    return diags.DiskDiagnostics(
        name=block["device"], read_bytes=stats.get("rd_bytes"),
        read_requests=stats.get("rd_operations"), write_bytes=stats.get("wr_bytes"),
        write_requests=stats.get("wr_operations"),
        errors_count=sum(f for f in failed if f is not None) if any(
            f is not None for f in failed) else None)


def _nics(config: GuestConfig, counters: HostCounters) -> list[diags.NicDiagnostics]:
    if not config.taps:  # the [qemu] network fallback: one NIC the host has no tap of
        return [diags.NicDiagnostics(mac_address=config.mac)] if config.vif_model else []
    nics = []
    for tap, mac in config.taps:
        c = counters.nic(tap) or {}
        nics.append(diags.NicDiagnostics(  # the tap's tx is what the guest received
            name=tap, mac_address=mac, rx_octets=c.get("tx_bytes"),
            rx_packets=c.get("tx_packets"), rx_errors=c.get("tx_errors"),
            rx_drop=c.get("tx_dropped"), tx_octets=c.get("rx_bytes"),
            tx_packets=c.get("rx_packets"), tx_errors=c.get("rx_errors"),
            tx_drop=c.get("rx_dropped")))
    return nics
