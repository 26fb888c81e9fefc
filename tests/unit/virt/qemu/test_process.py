"""Finding a guest's QEMU from its pid file, never mistaking another process for it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from novalet.virt.qemu.process import QemuProcesses, read_pidfile
from tests.unit.virt.qemu.fakes import FakeRunner

MARKER = "/i/0b9c3f4e/qmp.sock"


def fake_proc(root: Path, pid: int, state: str, argv: list[str]) -> None:
    entry = root / str(pid)
    entry.mkdir(parents=True)
    (entry / "stat").write_text(f"{pid} (qemu-system-x86) {state} 1 {pid} {pid} 0 -1\n")
    (entry / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")


@pytest.fixture
def procs(tmp_path: Path) -> QemuProcesses:
    root = tmp_path / "proc"
    fake_proc(root, 100, "S", ["qemu-system-x86_64", "-chardev",
                               f"socket,id=qmp,path={MARKER},server=on,wait=off"])
    fake_proc(root, 101, "Z", [])
    fake_proc(root, 102, "S", ["sleep", "100"])
    return QemuProcesses(FakeRunner(), proc_root=root)


def test_a_live_qemu_with_the_marker_is_found(procs: QemuProcesses, tmp_path: Path) -> None:
    pidfile = tmp_path / "qemu.pid"
    pidfile.write_text("100\n")
    assert procs.find(pidfile, MARKER) == 100


@pytest.mark.parametrize("pid", ["101", "102", "103", "garbage"])
def test_zombies_strangers_and_missing_pids_are_not_the_guest(
        procs: QemuProcesses, tmp_path: Path, pid: str) -> None:
    pidfile = tmp_path / "qemu.pid"
    pidfile.write_text(pid)
    assert procs.find(pidfile, MARKER) is None


def test_no_pidfile(procs: QemuProcesses, tmp_path: Path) -> None:
    assert procs.find(tmp_path / "none.pid", MARKER) is None
    assert read_pidfile(tmp_path / "none.pid") is None


async def test_wait_gone_times_out_on_a_live_process(procs: QemuProcesses) -> None:
    assert await procs.wait_gone(100, MARKER, 0.05) is False
    assert await procs.wait_gone(101, MARKER, 5) is True


async def test_launch_adds_daemonize_and_reads_the_pid(tmp_path: Path) -> None:
    runner = FakeRunner()
    pidfile = tmp_path / "qemu.pid"
    procs = QemuProcesses(runner)

    async def daemonize(argv: list[str], *, timeout: float = 0, check: bool = True,
                        cwd: str | None = None) -> object:
        assert cwd == str(tmp_path)
        runner.calls.append(list(argv))
        pidfile.write_text("4242\n")
        return None
    runner.run = daemonize  # type: ignore[method-assign,assignment]
    assert await procs.launch(["qemu-system-x86_64", "-m", "64"], pidfile) == 4242
    assert runner.calls[0][-3:] == ["-daemonize", "-pidfile", str(pidfile)]


def test_kill_of_a_gone_process_is_quiet(procs: QemuProcesses, real_programs: None) -> None:
    """The pid is our own child's, spawned and reaped: gone, and (pids being handed
    out in sequence) not reused a moment later. Was: a pid probed free a moment
    earlier, which on a busy machine could be an unrelated process by the SIGKILL."""
    child = subprocess.Popen(["true"])
    assert child.wait(timeout=10) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    procs.kill(child.pid, signal.SIGKILL)


async def test_an_exiting_qemu_without_its_cmdline_is_not_yet_gone(
        procs: QemuProcesses, tmp_path: Path) -> None:
    """bench/boot_real.py: a deleted guest's SPICE port was still held. An exiting
    process loses its memory (and its cmdline, where the marker is) before it closes
    its sockets: it is gone only once /proc says so (or it is a zombie)."""
    root = tmp_path / "proc"
    stat = (root / "100" / "stat").read_text()
    cmdline = root / "100" / "cmdline"

    async def exits_slowly() -> None:
        await asyncio.sleep(0.05)
        cmdline.write_bytes(b"")  # exit_mm(): the marker is gone, the sockets are not
        await asyncio.sleep(0.3)
        (root / "100" / "stat").write_text(stat.replace(" S ", " Z "))

    exiting = asyncio.create_task(exits_slowly())
    started = asyncio.get_running_loop().time()
    assert await procs.wait_gone(100, MARKER, 5) is True
    assert asyncio.get_running_loop().time() - started >= 0.3
    await exiting


async def test_a_reused_pid_is_not_the_guest_being_waited_for(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    argv = ["qemu-system-x86_64", f"path={MARKER}"]
    fake_proc(root, 200, "S", argv)
    fields = " ".join(str(n) for n in range(4, 24))  # ... starttime is field 22
    (root / "200" / "stat").write_text(f"200 (qemu) S {fields}\n")
    procs = QemuProcesses(FakeRunner(), proc_root=root)

    async def reused() -> None:
        await asyncio.sleep(0.05)
        (root / "200" / "stat").write_text(f"200 (bash) S {fields.replace('22', '999')}\n")

    task = asyncio.create_task(reused())
    assert await procs.wait_gone(200, MARKER, 5) is True
    await task
