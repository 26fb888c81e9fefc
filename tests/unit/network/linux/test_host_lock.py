"""Issue 14: a second `novalet up` with another state dir deleted the first cloud's
bridge and replaced its nftables tables while the first cloud's guests and dnsmasq
still ran. Now the first driver to touch the host holds a host-wide lock naming its
cloud, and another cloud's network service refuses to start, having touched nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from novalet import config
from novalet.network.linux import HostNetworkTaken, LinuxNetDriver
from novalet.network.linux import driver as linux_driver
from novalet.network.manager import NetworkManager
from novalet.network.model import HostNetworkState
from novalet.rpc.inprocess import InProcessBus
from tests.unit.network.linux.fakes import FakeNetlink, FakeRunner


def lock_file(directory: Path) -> Path:
    """The lock file of this process's network namespace in `directory`."""
    return directory / f"host-network-{os.stat('/proc/self/ns/net').st_ino}.lock"


def cloud_driver(tmp_path: Path, name: str, runner: FakeRunner, netlink: FakeNetlink
                 ) -> LinuxNetDriver:
    return LinuxNetDriver(tmp_path / name / "networking", runner, netlink=netlink,
                          owner=str(tmp_path / name), lock_dir=tmp_path / "run")


async def test_a_second_cloud_on_the_host_is_refused_and_touches_nothing(
        tmp_path: Path, runner: FakeRunner, netlink: FakeNetlink,
        state: HostNetworkState) -> None:
    netlink.add("eth0", None, up=True)
    first = cloud_driver(tmp_path, "cloud-a", runner, netlink)
    await first.apply(state)
    held = json.loads(lock_file(tmp_path / "run").read_text())
    assert held == {"owner": str(tmp_path / "cloud-a"), "pid": os.getpid()}
    scripts, links = len(runner.nft_scripts()), set(netlink.links_by_name)

    second = cloud_driver(tmp_path, "cloud-b", runner, netlink)
    conf = config.Config()
    conf.set("DEFAULT", "host", "host-1")
    manager = NetworkManager(conf, InProcessBus(default_timeout=1), second)
    with pytest.raises(HostNetworkTaken) as caught:
        await manager.start()
    message = str(caught.value)
    assert f"state directory {tmp_path / 'cloud-a'}" in message
    assert f"kill {os.getpid()}" in message
    with pytest.raises(HostNetworkTaken):
        await second.apply(HostNetworkState(host="host-1"))
    assert len(runner.nft_scripts()) == scripts and set(netlink.links_by_name) == links

    await first.close()  # the first cloud stops: the host is free
    await second.apply(HostNetworkState(host="host-1"))
    held = json.loads(lock_file(tmp_path / "run").read_text())
    assert held["owner"] == str(tmp_path / "cloud-b")


async def test_each_network_namespace_has_its_own_lock(
        tmp_path: Path, runner: FakeRunner, netlink: FakeNetlink,
        monkeypatch: pytest.MonkeyPatch) -> None:
    namespaces = tmp_path / "netns"  # stands for /run/netns: `ip netns add` binds there
    namespaces.mkdir()
    for name in ("nv-a", "nv-b"):
        (namespaces / name).touch()
    monkeypatch.setattr(linux_driver, "NETNS_DIR", namespaces)
    a = LinuxNetDriver(tmp_path / "a", runner, netlink=netlink, netns="nv-a",
                       lock_dir=tmp_path)
    b = LinuxNetDriver(tmp_path / "b", runner, netlink=netlink, netns="nv-b",
                       lock_dir=tmp_path)
    a.claim_host()
    b.claim_host()
    assert (tmp_path / f"host-network-{(namespaces / 'nv-a').stat().st_ino}.lock").exists()
    await a.close()
    await b.close()
    assert list(tmp_path.glob("*.lock")) == []  # released locks leave no files behind


def test_the_host_lock_is_keyed_on_the_namespace_not_its_name(
        tmp_path: Path, runner: FakeRunner, netlink: FakeNetlink,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two names for one namespace (as a process under `ip netns exec X` and a driver
    given netns X are) share one lock; tests/integration/test_host_lock_netns.py has
    the real namespaces."""
    namespaces = tmp_path / "netns"
    namespaces.mkdir()
    (namespaces / "nv-a").touch()
    (namespaces / "alias").hardlink_to(namespaces / "nv-a")
    monkeypatch.setattr(linux_driver, "NETNS_DIR", namespaces)
    first = LinuxNetDriver(tmp_path / "a", runner, netlink=netlink, netns="nv-a",
                           lock_dir=tmp_path / "run")
    first.claim_host()
    other = LinuxNetDriver(tmp_path / "b", runner, netlink=netlink, netns="alias",
                           lock_dir=tmp_path / "run")
    with pytest.raises(HostNetworkTaken):
        other.claim_host()


def test_a_missing_namespace_is_named(tmp_path: Path, runner: FakeRunner,
                                      netlink: FakeNetlink,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linux_driver, "NETNS_DIR", tmp_path / "netns")
    driver = LinuxNetDriver(tmp_path / "a", runner, netlink=netlink, netns="nv-gone",
                            lock_dir=tmp_path / "run")
    with pytest.raises(linux_driver.LinuxNetError, match="network namespace nv-gone"):
        driver.claim_host()


def test_a_driver_over_a_fake_netlink_takes_no_host_lock(
        tmp_path: Path, runner: FakeRunner, netlink: FakeNetlink) -> None:
    faked = LinuxNetDriver(tmp_path, runner, netlink=netlink)
    faked.claim_host()  # no lock: a fake netlink stands for no host
    assert list(tmp_path.glob("*.lock")) == []


def test_a_cloud_in_another_process_is_named_with_its_pid(
        tmp_path: Path, runner: FakeRunner, netlink: FakeNetlink, real_programs: None) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from novalet.network.linux.driver import HostLock;"
         f"HostLock(Path({str(lock_file(tmp_path))!r}), '/srv/first-cloud').acquire();"
         "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        second = LinuxNetDriver(tmp_path / "b", runner, netlink=netlink, lock_dir=tmp_path)
        with pytest.raises(HostNetworkTaken, match=f"state directory /srv/first-cloud "
                                                   f"\\(pid {holder.pid}\\)"):
            second.claim_host()
    finally:
        holder.communicate("")  # its stdin closes: it exits, and the lock goes with it
    second.claim_host()
