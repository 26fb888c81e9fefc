"""The QEMU driver's diagnostics: vCPU time from the threads QMP names, disks from
query-blockstats, memory from the configuration and QEMU's resident set, NIC
counters from the taps (turned round to the guest's view)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from novalet.virt.driver import ImageMeta
from novalet.virt.qemu.diagnostics import HostCounters, collect
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.guest import GuestNotRunning
from tests.unit.virt.qemu.conftest import make_spec

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int, utime: int = 0, stime: int = 0, start: int = 0) -> str:
    # fields 3..22 after "(comm with spaces)": state, then 11 zeros to utime (14)
    fields = ["S"] + ["0"] * 10 + [str(utime), str(stime)] + ["0"] * 6 + [str(start)]
    return f"{pid} (qemu system x86) " + " ".join(fields) + " 0 0\n"


def _fake_host(root: Path, pid: int, vcpus: int, rss_kb: int) -> HostCounters:
    proc = root / "proc"
    (proc / str(pid) / "task").mkdir(parents=True)
    (proc / "uptime").write_text("1000.50 1900.00\n")
    (proc / str(pid) / "stat").write_text(_stat(pid, start=400 * TICKS))
    (proc / str(pid) / "status").write_text(f"Name:\tqemu\nVmRSS:\t {rss_kb} kB\n")
    for i in range(vcpus):
        tid = proc / str(pid) / "task" / str(pid * 10 + i)
        tid.mkdir()
        (tid / "stat").write_text(_stat(pid, utime=2 * TICKS * (i + 1), stime=TICKS))
    return HostCounters(proc, root / "net")


async def test_a_running_guest_reports_measured_figures(
        driver: QemuDriver, image: ImageMeta, tmp_path: Path) -> None:
    spec = make_spec(image, vcpus=2, memory_mb=256)
    await driver.spawn(spec)
    pid = driver.guests.pid(driver._require(spec.uuid))
    assert pid is not None
    driver.counters = _fake_host(tmp_path, pid, 2, rss_kb=300 * 1024)
    diags = await driver.get_diagnostics(spec.uuid)
    assert (diags.state, diags.driver, diags.hypervisor) == ("running", "libvirt", "qemu")
    assert diags.uptime == 600 and diags.config_drive is True
    assert [(c.id, c.time) for c in diags.cpu_details] == [(0, 3 * 10 ** 9), (1, 5 * 10 ** 9)]
    assert (diags.memory_details.maximum, diags.memory_details.used) == (256, 256)  # capped
    names = [d.name for d in diags.disk_details]
    assert names[0] == "root" and "config" in names
    root = diags.disk_details[0]
    assert (root.read_bytes, root.read_requests, root.write_bytes, root.errors_count) == (
        1024, 1, 512, 1)
    # no taps: the user-mode fallback NIC, whose counters the host has not
    [nic] = diags.nic_details
    assert nic.mac_address and nic.rx_octets is None


async def test_nic_counters_come_from_the_taps(driver: QemuDriver, image: ImageMeta,
                                               tmp_path: Path) -> None:
    spec = make_spec(image)
    await driver.spawn(spec)
    paths = driver._require(spec.uuid)
    config = dataclasses.replace(paths.load(), taps=(("tap-a", "fa:16:3e:00:00:01"),
                                                     ("tap-gone", "fa:16:3e:00:00:02")))
    stats = tmp_path / "net" / "tap-a" / "statistics"
    stats.mkdir(parents=True)
    for i, name in enumerate(("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
                              "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")):
        (stats / name).write_text(f"{i + 1}\n")
    counters = HostCounters(tmp_path / "proc", tmp_path / "net")
    diags = await collect(driver.guests, paths, config, "kvm", counters)
    tap, gone = diags.nic_details
    assert (tap.name, tap.mac_address) == ("tap-a", "fa:16:3e:00:00:01")
    # what the tap transmitted, the guest received
    assert (tap.rx_octets, tap.rx_packets, tap.rx_errors, tap.rx_drop) == (5, 6, 7, 8)
    assert (tap.tx_octets, tap.tx_packets, tap.tx_errors, tap.tx_drop) == (1, 2, 3, 4)
    assert gone.rx_octets is None and gone.mac_address == "fa:16:3e:00:00:02"
    # a host without those /proc files still answers, with what it has
    assert diags.uptime is None and diags.memory_details.used is None
    assert all(c.time is None for c in diags.cpu_details)


async def test_a_stopped_guest_has_none(driver: QemuDriver, image: ImageMeta) -> None:
    spec = make_spec(image)
    await driver.spawn(spec)
    await driver.power_off(spec.uuid)
    with pytest.raises(GuestNotRunning):
        await driver.get_diagnostics(spec.uuid)
