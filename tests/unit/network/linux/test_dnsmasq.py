"""dnsmasq: its command line and hosts file, and when it is started, reloaded or restarted."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import pytest

from novalet.network.linux.dnsmasq import (
    Dnsmasq,
    DnsmasqFailed,
    DnsmasqFiles,
    dhcp_hostname,
    dnsmasq_argv,
    hosts_file,
    reachable_by_others,
)
from novalet.network.model import NetworkOnHost
from tests.unit.network.linux.conftest import make_state
from tests.unit.network.linux.fakes import FakeRunner


@pytest.fixture
def network() -> NetworkOnHost:
    return make_state().networks[0]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "dnsmasq"


@pytest.fixture
def dnsmasq(directory: Path, runner: FakeRunner) -> Dnsmasq:
    return Dnsmasq(directory, runner)


def test_command_line(network: NetworkOnHost) -> None:
    files = DnsmasqFiles(Path("/state/dnsmasq"), "nvbr100")
    assert dnsmasq_argv(dataclasses.replace(network, mtu=1400), files) == [
        "dnsmasq",
        "--conf-file=",
        "--no-hosts",
        "--no-resolv",
        "--strict-order",
        "--port=0",
        "--bind-interfaces",
        "--interface=nvbr100",
        "--except-interface=lo",
        "--listen-address=10.0.0.1",
        "--pid-file=/state/dnsmasq/nvbr100.pid",
        "--log-facility=/state/dnsmasq/nvbr100.log",
        "--dhcp-hostsfile=/state/dnsmasq/nvbr100.hosts",
        "--leasefile-ro",
        "--dhcp-authoritative",
        "--dhcp-ignore=tag:!known",
        "--dhcp-no-override",
        "--dhcp-range=10.0.0.2,static,255.255.255.0,86400",
        "--dhcp-lease-max=256",
        "--dhcp-option=3,10.0.0.1",
        "--dhcp-option=6,192.168.0.53",
        "--dhcp-option=26,1400",
    ]


def test_command_line_without_dns_servers_sends_none_and_can_stay_root(
        network: NetworkOnHost) -> None:
    argv = dnsmasq_argv(dataclasses.replace(network, dns=[]),
                        DnsmasqFiles(Path("/s"), "nvbr100"), lease_seconds=120, user="root")
    assert not [a for a in argv if a.startswith("--dhcp-option=6")]
    assert "--dhcp-range=10.0.0.2,static,255.255.255.0,120" in argv
    assert argv[-1] == "--user=root"


def test_hosts_file_is_sorted_by_address(network: NetworkOnHost) -> None:
    network.hosts = {"52:54:00:00:00:0A": ("10.0.0.100", "web.example.org"),
                     "52:54:00:00:00:02": ("10.0.0.12", "vm-2"),
                     "52:54:00:00:00:03": ("10.0.0.9", "!!!")}
    assert hosts_file(network) == ("52:54:00:00:00:03,10.0.0.9\n"
                                   "52:54:00:00:00:02,vm-2,10.0.0.12\n"
                                   "52:54:00:00:00:0a,web,10.0.0.100\n")


@pytest.mark.parametrize(("given", "expected"), [
    ("vm-1", "vm-1"), ("My Server_1", "my-server-1"), ("host.domain", "host"),
    ("-x-", "x"), ("é", ""), ("a" * 80, "a" * 63),
])
def test_dhcp_hostname(given: str, expected: str) -> None:
    assert dhcp_hostname(given) == expected


async def test_starts_once_then_leaves_it_alone(dnsmasq: Dnsmasq, runner: FakeRunner,
                                                network: NetworkOnHost, directory: Path) -> None:
    assert await dnsmasq.ensure(network) == "started"
    assert await dnsmasq.ensure(network) == "unchanged"
    assert len(runner.commands("dnsmasq")) == 1
    assert runner.commands("dnsmasq")[0] == dnsmasq.argv(network)
    assert (directory / "nvbr100.hosts").read_text() == hosts_file(network)
    assert (directory / "nvbr100.hosts").stat().st_mode & 0o777 == 0o644
    assert dnsmasq.pid("nvbr100") in runner.processes
    assert runner.signals == []


async def test_a_new_host_is_picked_up_with_sighup(dnsmasq: Dnsmasq, runner: FakeRunner,
                                                   network: NetworkOnHost) -> None:
    await dnsmasq.ensure(network)
    pid = dnsmasq.pid("nvbr100")
    network.hosts["52:54:00:00:00:09"] = ("10.0.0.19", "vm-9")
    assert await dnsmasq.ensure(network) == "reloaded"
    assert runner.signals == [(pid, signal.SIGHUP)]
    assert dnsmasq.pid("nvbr100") == pid


@pytest.mark.parametrize("change", ["remove", "readdress"])
async def test_a_host_that_leaves_or_moves_restarts_it(dnsmasq: Dnsmasq, runner: FakeRunner,
                                                       network: NetworkOnHost, change: str) -> None:
    await dnsmasq.ensure(network)
    pid = dnsmasq.pid("nvbr100")
    mac = "52:54:00:00:00:02"
    if change == "remove":
        del network.hosts[mac]
    else:
        network.hosts[mac] = ("10.0.0.99", "vm-2")
    assert await dnsmasq.ensure(network) == "restarted"
    assert runner.signals == [(pid, signal.SIGTERM)]
    assert pid not in runner.processes
    assert dnsmasq.pid("nvbr100") not in (None, pid)


async def test_changed_arguments_restart_it(dnsmasq: Dnsmasq, runner: FakeRunner,
                                            network: NetworkOnHost) -> None:
    await dnsmasq.ensure(network)
    network.dns = ["192.168.0.54"]
    assert await dnsmasq.ensure(network) == "restarted"
    assert "--dhcp-option=6,192.168.0.54" in runner.commands("dnsmasq")[-1]


async def test_a_stale_pid_file_naming_another_program_starts_a_new_one(
        dnsmasq: Dnsmasq, runner: FakeRunner, network: NetworkOnHost, directory: Path) -> None:
    directory.mkdir()
    other = runner.spawn(["sshd", "-D"])
    (directory / "nvbr100.pid").write_text(f"{other}\n")
    assert await dnsmasq.ensure(network) == "started"
    assert other in runner.processes, "a reused pid must never be signalled"
    assert runner.signals == []


async def test_a_dnsmasq_that_ignores_sigterm_is_killed(
        dnsmasq: Dnsmasq, runner: FakeRunner, network: NetworkOnHost,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("novalet.network.linux.dnsmasq.STOP_TIMEOUT", 0.05)
    await dnsmasq.ensure(network)
    pid = dnsmasq.pid("nvbr100")
    assert pid is not None
    runner.ignore_term.add(pid)
    await dnsmasq.stop("nvbr100")
    assert runner.signals == [(pid, signal.SIGTERM), (pid, signal.SIGKILL)]


async def test_stop_removes_its_files(dnsmasq: Dnsmasq, runner: FakeRunner,
                                      network: NetworkOnHost, directory: Path) -> None:
    await dnsmasq.ensure(network)
    (directory / "nvbr100.log").write_text("log\n")
    assert dnsmasq.bridges() == ["nvbr100"]
    await dnsmasq.stop("nvbr100")
    assert runner.processes == {}
    assert list(directory.iterdir()) == []
    assert dnsmasq.bridges() == []
    await dnsmasq.stop("nvbr100")  # nothing left: still fine


async def test_a_daemon_that_writes_no_pid_is_an_error(
        dnsmasq: Dnsmasq, runner: FakeRunner, network: NetworkOnHost,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("novalet.network.linux.dnsmasq.PIDFILE_TIMEOUT", 0.02)

    async def starts_nothing(argv: list[str], **kwargs: object) -> None:
        return None
    monkeypatch.setattr(runner, "run", starts_nothing)
    with pytest.raises(DnsmasqFailed, match="wrote no pid"):
        await dnsmasq.ensure(network)


async def test_stays_root_when_others_cannot_read_the_hosts_file(
        tmp_path: Path, runner: FakeRunner, network: NetworkOnHost,
        monkeypatch: pytest.MonkeyPatch) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert not reachable_by_others(private / "dnsmasq")
    await Dnsmasq(private / "dnsmasq", runner).ensure(network)
    assert runner.commands("dnsmasq")[0][-1] == "--user=root"
    monkeypatch.setattr("novalet.network.linux.dnsmasq.reachable_by_others", lambda path: True)
    assert "--user=root" not in Dnsmasq(private / "dnsmasq", runner).argv(network)


def test_reachable_by_others_needs_search_permission_all_the_way(tmp_path: Path) -> None:
    assert reachable_by_others(Path("/usr/share"))
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    assert not reachable_by_others(closed / "missing" / "dir")
