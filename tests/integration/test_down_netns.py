"""`novalet down` on real kernel state (issue 14, item 10), in a scratch network
namespace: it removes the bridge, taps, dnsmasq and nftables tables a cloud made,
leaves a bridge Novalet did not make, and runs again with nothing left to do."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from novalet import config
from novalet.network.linux.driver import LinuxNetDriver
from novalet.service import down
from tests.integration.test_linux_net import (
    BRIDGE,
    _require_tools,
    cleanup_namespaces,
    make_guests,
    make_state,
    sh,
)

pytestmark = pytest.mark.integration


def _links(ns: str) -> str:
    return sh("ip", "-n", ns, "-d", "link", "show").stdout


def test_down_removes_a_clouds_host_networking_and_nothing_else(tmp_path: Path) -> None:
    _require_tools()
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    ns = f"nvdown{os.getpid() % 100000}"
    state_dir = tmp_path / "state"
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(state_dir))
    guests = make_guests(ns)
    drivers: list[LinuxNetDriver] = []

    def in_namespace(conf: config.Config) -> LinuxNetDriver:
        drivers.append(LinuxNetDriver(conf.state_path / "networking", netns=ns))
        return drivers[-1]

    async def build() -> None:
        driver = in_namespace(conf)
        try:
            for guest in guests:
                await driver.plug(guest.vif)
            try:
                await driver.apply(make_state(guests))
            except Exception as exc:  # e.g. the floating address: not what is tested
                print(f"apply: {exc}")
        finally:
            await driver.close()

    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "add", "nvpub", "type", "veth", "peer", "name", "nvpubpeer")
        sh("ip", "-n", ns, "link", "add", "notnovalet", "type", "bridge")
        asyncio.run(build())
        assert BRIDGE in _links(ns) and guests[0].vif.tap in _links(ns)
        dnsmasq = sh("ip", "netns", "pids", ns).stdout.split()
        assert dnsmasq, "dnsmasq did not start"
        assert "novalet" in sh("ip", "netns", "exec", ns, "nft", "list", "tables").stdout

        report = asyncio.run(down.down(conf, network_driver=in_namespace))
        assert any("removed Novalet's bridges" in line for line in report), report
        links = _links(ns)
        assert BRIDGE not in links and guests[0].vif.tap not in links
        assert "notnovalet" in links  # not Novalet's: stays
        assert "novalet" not in sh("ip", "netns", "exec", ns, "nft", "list", "tables").stdout
        assert sh("ip", "netns", "pids", ns).stdout.split() == []  # dnsmasq ended

        again = asyncio.run(down.down(conf, network_driver=in_namespace))
        assert any("removed Novalet's bridges" in line for line in again), again
    finally:
        subprocess.run(["ip", "-n", ns, "link", "del", "notnovalet"], check=False,
                       capture_output=True)
        cleanup_namespaces([ns])
