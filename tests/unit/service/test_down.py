"""`novalet down` (issue 14, item 10: no documented way to take everything down after
Ctrl-C): it ends the state dir's guests and no other cloud's, refuses while the
cloud still runs, and is safe to run twice or with nothing running."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalet import config, exceptions
from novalet.cli.main import main
from novalet.network.model import HostNetworkState, Vif
from novalet.service import down

SLEEPER = "import time\nwhile True: time.sleep(1)\n"


def _conf(state_dir: Path) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(state_dir))
    return conf


class FakeNet:
    def __init__(self, refuse: str = "") -> None:
        self.torn_down = 0
        self.closed = 0
        self.refuse = refuse

    def claim_host(self) -> None: ...

    async def apply(self, state: HostNetworkState) -> None: ...
    async def plug(self, vif: Vif) -> None: ...
    async def unplug(self, vif: Vif) -> None: ...

    async def teardown(self) -> None:
        if self.refuse:
            raise exceptions.Conflict(self.refuse)
        self.torn_down += 1

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def _fake_guest(state_dir: Path, started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """A process standing in for a guest's QEMU: its command line holds the guest's pid
    file path, as QEMU's does (-pidfile), and the pid file names it."""
    guest_dir = state_dir / "instances" / str(uuid.uuid4())
    guest_dir.mkdir(parents=True)
    (guest_dir / "domain.json").write_text("{}")
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, "-pidfile",
                             str(guest_dir / "qemu.pid")])
    started.append(proc)
    (guest_dir / "qemu.pid").write_text(f"{proc.pid}\n")
    return proc


def _fake_novalet(tmp_path: Path, started: list[subprocess.Popen[bytes]],
                  *args: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "bin" / "novalet"
    script.parent.mkdir(exist_ok=True)
    script.write_text(SLEEPER)
    proc = subprocess.Popen([sys.executable, str(script), *args])
    started.append(proc)
    deadline = time.monotonic() + 10
    while str(script).encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def _wait_exit(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        return None


def test_down_stops_only_this_state_dirs_guests_and_is_safe_twice(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(down, "is_root", lambda: False)  # host networking: not here
    mine, other = tmp_path / "mine", tmp_path / "other"
    guest = _fake_guest(mine, processes)
    others_guest = _fake_guest(other, processes)
    net = FakeNet()
    report = asyncio.run(down.down(_conf(mine), network_driver=lambda conf: net))
    assert _wait_exit(guest) is not None
    assert others_guest.poll() is None  # another cloud's guest runs on
    assert any(f"QEMU pid {guest.pid}" in line for line in report)
    again = asyncio.run(down.down(_conf(mine), network_driver=lambda conf: net))
    assert not any("stopped guest" in line for line in again)
    assert net.torn_down == 0
    assert (mine / "instances").is_dir()  # disks stay: the guests come back SHUTOFF


def test_down_refuses_while_the_cloud_still_runs(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    state = tmp_path / "state"
    guest = _fake_guest(state, processes)
    cloud = _fake_novalet(tmp_path, processes, "up", "--state-dir", str(state))
    with pytest.raises(down.CloudStillRunning) as error:
        asyncio.run(down.down(_conf(state), network_driver=lambda conf: FakeNet()))
    assert str(cloud.pid) in error.value.message and "novalet up" in error.value.message
    assert guest.poll() is None


def test_down_reports_a_host_lock_held_by_another_cloud(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(down, "is_root", lambda: True)
    (tmp_path / "mine" / "networking").mkdir(parents=True)
    net = FakeNet(refuse="Another Novalet cloud manages this host's networking")
    report = asyncio.run(down.down(_conf(tmp_path / "mine"), network_driver=lambda c: net))
    assert net.torn_down == 0 and net.closed == 1
    assert any("Another Novalet cloud manages" in line for line in report)


def test_down_tears_down_host_networking_when_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(down, "is_root", lambda: True)
    net = FakeNet()
    report = asyncio.run(down.down(_conf(tmp_path), network_driver=lambda c: net))
    assert net.torn_down == 0  # this state dir never had host networking
    assert any("no host networking of this cloud" in line for line in report)
    (tmp_path / "networking").mkdir()
    report = asyncio.run(down.down(_conf(tmp_path), network_driver=lambda c: net))
    assert net.torn_down == 1 and net.closed == 1
    assert any("removed Novalet's bridges" in line for line in report)


def test_novalet_down_with_nothing_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(down, "is_root", lambda: False)  # no real teardown in a unit test
    assert main(["down", "--state-dir", str(tmp_path / "never-used")]) == 0
    assert "novalet down:" in capsys.readouterr().out


def test_novalet_down_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["down", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--state-dir" in out and "guests" in out and "safe to run again" in out
