"""A real `novalet up` process on a free loopback port, and the real clients against it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from novalet.image.testimage import builder
from novalet.console.proxies import free_ports_ini
from tests import cli_forkserver

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningCloud:
    process: subprocess.Popen[str]
    state_dir: Path
    port: int
    log: Path

    @property
    def clouds_yaml(self) -> Path:
        return self.state_dir / "clouds.yaml"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        return env

    def openstack(self, *args: str, cloud: str = "novalet-demo", check: bool = True
                  ) -> subprocess.CompletedProcess[str]:
        result = cli_forkserver.run(["--os-cloud", cloud, *args], self.env, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n"
                                 f"{result.stderr}\n--- server log ---\n{self.tail()}")
        return result

    def openstack_json(self, *args: str, cloud: str = "novalet-demo") -> object:
        return json.loads(self.openstack(*args, "-f", "json", cloud=cloud).stdout)

    def show_server(self, name: str, *options: str, cloud: str = "novalet") -> dict[str, Any]:
        """`openstack [options] server show name` as a dict (admin by default)."""
        shown = self.openstack_json(*options, "server", "show", name, cloud=cloud)
        assert isinstance(shown, dict)
        return shown

    def wait_server(self, name: str, status: str, *options: str, cloud: str = "novalet",
                    timeout: float = 30) -> dict[str, Any]:
        """The server once it shows `status` with no task_state; AssertionError after
        `timeout` seconds, with what it showed last."""
        deadline = time.monotonic() + timeout
        shown: dict[str, Any] = {}
        while time.monotonic() < deadline:
            shown = self.show_server(name, *options, cloud=cloud)
            if shown["status"] == status and not shown["OS-EXT-STS:task_state"]:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{name} never reached {status}: {shown}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text().splitlines()[-lines:])


PROXIES_ON_FREE_PORTS = free_ports_ini()


def start_cloud(state_dir: Path, *extra: str) -> RunningCloud:
    port = free_port()
    log = state_dir.parent / f"novalet-{port}.log"
    handle = log.open("w")
    # Console proxies on free ports, so clouds run side by side; a later
    # --config-file in `extra` may still name ports.
    proxies = state_dir.parent / f"proxies-{port}.conf"
    proxies.write_text(PROXIES_ON_FREE_PORTS)
    process = subprocess.Popen(
        [str(BIN / "novalet"), "up", "--state-dir", str(state_dir), "--port", str(port),
         "--config-file", str(proxies),
         *(extra or ("--driver", "fake", "--metadata-port", "0"))],
        stdout=handle, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "Novalet is up" in log.read_text():
            return RunningCloud(process, state_dir, port, log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"novalet up did not start:\n{log.read_text()}")


def stop_cloud(cloud: RunningCloud) -> int:
    cloud.process.send_signal(signal.SIGINT)
    try:
        return cloud.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        cloud.process.kill()
        raise AssertionError("novalet up did not stop on Ctrl-C") from None


def fake_cloud(root: Path, conf: str, check_stop: bool = True) -> Iterator[RunningCloud]:
    """A fake-driver `novalet up` under `root` with `conf` (INI text) as an extra
    configuration file, stopped with Ctrl-C afterwards (and its exit checked unless
    not `check_stop`). For a fixture to `yield from`."""
    path = root / "extra.conf"
    path.write_text(conf)
    cloud = start_cloud(root / "state", "--driver", "fake", "--metadata-port", "0",
                        "--config-file", str(path))
    try:
        yield cloud
    finally:
        code = stop_cloud(cloud)
        assert code == 0 or not check_stop, cloud.tail()


@pytest.fixture(scope="module")
def running_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    state = tmp_path_factory.mktemp("cloud") / "state"
    cloud = start_cloud(state)
    try:
        yield cloud
    finally:
        assert stop_cloud(cloud) == 0, cloud.tail()


def keystone_token(client: httpx.Client, user: str = "demo") -> str:
    """A token of `user` (demo or admin; password = name) scoped to its own project."""
    resp = client.post("/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": user}}},
        "scope": {"project": {"name": user, "domain": {"id": "default"}}}}})
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def remove_networks(cloud: RunningCloud, bridges: Sequence[str], timeout: float = 30) -> None:
    """Delete the cloud's networks (admin, microversion 2.35; a project's network is
    disassociated first) and wait until the host has no bridge, dnsmasq or novalet
    firewall table left for them."""
    base = f"http://127.0.0.1:{cloud.port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        headers = {"X-Auth-Token": keystone_token(client, "admin"),
                   "OpenStack-API-Version": "compute 2.35"}
        for network in client.get("/compute/v2.1/os-networks",
                                  headers=headers).json()["networks"]:
            if network["project_id"]:
                resp = client.post(f"/compute/v2.1/os-networks/{network['id']}/action",
                                   json={"disassociate": None}, headers=headers)
                assert resp.status_code == 202, resp.text
            resp = client.delete(f"/compute/v2.1/os-networks/{network['id']}",
                                 headers=headers)
            assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [thing for bridge in bridges for thing in host_leftovers(bridge)]
        if not left:
            return
        time.sleep(0.5)
    raise AssertionError(f"left behind after deleting every network: {left}")


def host_leftovers(bridge: str) -> list[str]:
    """Kernel objects and processes of `bridge` (and novalet's tables) still there."""
    left = []
    if Path(f"/sys/class/net/{bridge}").exists():
        left.append(f"bridge {bridge}")
    dnsmasq = subprocess.run(["pgrep", "-f", f"dnsmasq.*--interface={bridge}"],
                             capture_output=True, text=True).stdout.split()
    left += [f"dnsmasq pid {pid}" for pid in dnsmasq]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True,
                            text=True).stdout
    left += [line for line in tables.splitlines() if "novalet" in line]
    return left


@contextmanager
def qemu_cloud(root: Path, guest_image: Path, conf: str, bridges: Sequence[str],
               flavors: dict[str, int] | None = None) -> Iterator[RunningCloud]:
    """A QEMU-backed cloud under `root` with the test image and small flavors
    (name -> MB of RAM); on exit its servers and networks are deleted (they would
    outlive it) and it is stopped."""
    state = root / "state"
    target = builder.default_output(state)
    target.parent.mkdir(parents=True)
    for src, dst in ((guest_image, target),
                     (builder.kernel_path(guest_image), builder.kernel_path(target)),
                     (builder.ramdisk_path(guest_image), builder.ramdisk_path(target))):
        shutil.copyfile(src, dst)
    (root / "novalet.conf").write_text(conf)
    running = start_cloud(state, "--config-file", str(root / "novalet.conf"))
    for name, ram in (flavors or {"t.small": 128}).items():
        running.openstack("flavor", "create", "--ram", str(ram), "--disk", "1", "--vcpus",
                          "1", name, cloud="novalet")
    try:
        yield running
    finally:
        delete_servers(running)
        remove_networks(running, bridges)
        stop_cloud(running)


def delete_servers(cloud: RunningCloud, timeout: float = 120) -> None:
    """Delete every server of the cloud at once and wait until each is gone (404), as
    admin through the API: a clean-up, where the CLI's start-up (seconds per command
    on a busy host) and its two-second polls only cost time."""
    base = "/compute/v2.1/servers"
    with httpx.Client(base_url=f"http://127.0.0.1:{cloud.port}", timeout=60) as client:
        headers = {"X-Auth-Token": keystone_token(client, "admin")}
        listed = client.get(f"{base}?all_tenants=1", headers=headers)
        assert listed.status_code == 200, listed.text
        left = [server["id"] for server in listed.json()["servers"]]
        for server_id in left:
            client.delete(f"{base}/{server_id}", headers=headers)
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = [server_id for server_id in left
                    if client.get(f"{base}/{server_id}", headers=headers).status_code != 404]
