"""`novalet down` (issue 14, item 10: no documented way to take everything down after
Ctrl-C): it ends the state dir's guests and no other cloud's, refuses while the
cloud still runs, and is safe to run twice or with nothing running."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalet import config, exceptions
from novalet.cli.main import main
from novalet.network.model import HostNetworkState, Vif
from novalet.console.proxies import free_ports_ini
from novalet.service import down, state_lock

BIN = Path(sys.executable).parent  # the virtualenv's bin: its `novalet`

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("given", ["default data dir", "state_path in a config file"])
def test_down_refuses_while_up_runs_on_a_state_dir_not_on_its_command_line(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]], given: str) -> None:
    """The bug: `down` looked for the state dir on the other processes' command lines;
    `novalet up` with the default data dir, or state_path only in a --config-file,
    names none there, so down saw no cloud and force-stopped its guests."""
    conf_file = tmp_path / "novalet.conf"
    ini = f"[api]\nport = {_free_port()}\n[metadata]\nport = 0\n" + free_ports_ini()
    env = dict(os.environ)
    if given == "default data dir":
        env["XDG_DATA_HOME"] = str(tmp_path / "data")  # platformdirs' user data dir
        state = tmp_path / "data" / "novalet"
    else:
        state = tmp_path / "state"
        ini = f"[DEFAULT]\nstate_path = {state}\n" + ini
    conf_file.write_text(ini)
    cloud = subprocess.Popen(
        [str(BIN / "novalet"), "up", "--driver", "fake", "--config-file", str(conf_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    processes.append(cloud)
    assert cloud.stdout is not None
    output = b""
    while b"Novalet is up" not in output:
        line = cloud.stdout.readline()
        assert line, f"novalet up did not start: {output.decode()}"
        output += line
    guest = _fake_guest(state, processes)
    with pytest.raises(down.CloudStillRunning) as error:
        asyncio.run(down.down(_conf(state), network_driver=lambda conf: FakeNet()))
    message = error.value.message
    assert f"novalet up (pid {cloud.pid})" in message and f"kill {cloud.pid}" in message
    assert guest.poll() is None  # the running cloud's guest is left alone
    cloud.send_signal(signal.SIGINT)
    assert _wait_exit(cloud) is not None
    asyncio.run(down.down(_conf(state), network_driver=lambda conf: FakeNet()))
    assert _wait_exit(guest) is not None  # once it stopped, down ends its guests


def test_down_refuses_while_a_compute_or_network_service_holds_the_state_dir(
        tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    state = tmp_path / "state"
    guest = _fake_guest(state, processes)
    for service in ("compute", "network"):
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; from pathlib import Path; "
             "from novalet.service.state_lock import StateDirLocks; "
             f"StateDirLocks(Path({str(state)!r}), {service!r}).acquire(); "
             "print('held', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        processes.append(holder)
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        with pytest.raises(down.CloudStillRunning,
                           match=f"novalet {service} \\(pid {holder.pid}\\)"):
            asyncio.run(down.down(_conf(state), network_driver=lambda conf: FakeNet()))
        assert guest.poll() is None
        holder.kill()
        holder.wait()
    asyncio.run(down.down(_conf(state), network_driver=lambda conf: FakeNet()))
    assert _wait_exit(guest) is not None  # a killed holder holds nothing any more


def test_a_second_cloud_on_a_held_state_dir_does_not_start(tmp_path: Path) -> None:
    """A compute and a network service share a state dir (one lock each); a second
    of either, or a `novalet up`, is refused naming the first."""
    compute = state_lock.StateDirLocks(tmp_path, "compute")
    network = state_lock.StateDirLocks(tmp_path, "network")
    compute.acquire()
    network.acquire()
    try:
        with pytest.raises(state_lock.StateDirInUse, match="novalet compute"):
            state_lock.StateDirLocks(tmp_path, "up").acquire()
        assert json.loads((tmp_path / "network.lock").read_text()) == {
            "owner": "novalet network", "pid": os.getpid()}
    finally:
        compute.release()
        network.release()
    with state_lock.StateDirLocks(tmp_path, "up"):
        pass


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


@pytest.mark.parametrize("service", ["compute", "network"])
def test_compute_and_network_services_hold_their_state_dir_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], service: str) -> None:
    from novalet.service import roles, runner
    seen: list[object] = []

    class Role:
        def __init__(self, conf: config.Config) -> None: ...

        async def start(self) -> None:  # what `down` would meet while the service runs
            seen.append(json.loads((tmp_path / f"{service}.lock").read_text()))
            raise exceptions.Conflict("stop here")

        async def stop(self) -> None: ...

    monkeypatch.setitem(roles.ROLES, service, Role)
    conf = _conf(tmp_path)
    conf.set("DEFAULT", "transport_url", "rabbit://guest:guest@127.0.0.1:5672/")
    assert runner.run(conf, service) == 1
    assert seen == [{"owner": f"novalet {service}", "pid": os.getpid()}]
    assert list(tmp_path.glob("*.lock")) == []  # released when the service ends
    with state_lock.StateDirLocks(tmp_path, service):  # another one runs: refused
        assert runner.run(conf, service) == 1
    assert f"in use by novalet {service} (pid {os.getpid()}" in capsys.readouterr().err
