"""Fixtures for the Linux network driver's unit tests: no program, no netlink socket."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from novalet.network.linux.driver import LinuxNetDriver
from novalet.network.model import (
    FloatingNat,
    HostNetworkState,
    InstanceNet,
    NetworkOnHost,
    SecurityRule,
    Vif,
)
from tests.unit.network.linux.fakes import FakeNetlink, FakeRunner


@pytest.fixture(autouse=True)
def _no_side_effects(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that starts a program or opens a netlink socket by accident fails."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"unit test tried to reach the system: {args[:1]}")

    if "real_programs" not in request.fixturenames:
        monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse)
        monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr("pyroute2.IPRoute", refuse)
    monkeypatch.setattr("pyroute2.netns.setns", refuse)


@pytest.fixture
def real_programs() -> None:
    """Lets a test of the command door itself run harmless programs (sh, cat)."""


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def netlink() -> FakeNetlink:
    return FakeNetlink()


@pytest.fixture
def driver(tmp_path: Path, runner: FakeRunner, netlink: FakeNetlink) -> LinuxNetDriver:
    return LinuxNetDriver(tmp_path / "state", runner, netlink=netlink)


def make_vif(n: int, *, bridge: str = "nvbr100", cidr: str = "10.0.0.0/24",
             gateway: str = "10.0.0.1", network_id: str = "net-1") -> Vif:
    return Vif(id=f"{n:08d}-1111-2222-3333-444444444444", address=f"52:54:00:00:00:{n:02x}",
               network_id=network_id, network_label="private", bridge=bridge,
               fixed_ip=f"{cidr.rsplit('.', 1)[0]}.{10 + n}", cidr=cidr, gateway=gateway)


def make_state(**overrides: Any) -> HostNetworkState:
    """One FlatDHCP network, two instances (one with a floating IP), public interface eth0."""
    vif1, vif2 = make_vif(1), make_vif(2)
    network = NetworkOnHost(
        uuid="net-1", label="private", cidr="10.0.0.0/24", gateway="10.0.0.1", bridge="nvbr100",
        dhcp_start="10.0.0.2", netmask="255.255.255.0", dns=["192.168.0.53"],
        hosts={vif1.address: (vif1.fixed_ip, "vm-1"), vif2.address: (vif2.fixed_ip, "vm-2")})
    values: dict[str, Any] = dict(
        host="host-1", networks=[network],
        instances=[
            InstanceNet("aaaa-1", "project-1", [vif1], [
                SecurityRule("tcp", 22, 22, cidr="0.0.0.0/0"),
                SecurityRule("tcp", 8000, 8080, remote_ips=[vif2.fixed_ip, "10.0.0.13"]),
                SecurityRule("icmp", -1, -1, cidr="10.0.0.0/24"),
            ]),
            InstanceNet("bbbb-2", "project-1", [vif2]),
        ],
        floating=[FloatingNat("192.168.0.50", vif1.fixed_ip)],
        public_interface="eth0")
    values.update(overrides)
    return HostNetworkState(**values)


@pytest.fixture
def state() -> HostNetworkState:
    return make_state()
