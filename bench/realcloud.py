"""A QEMU-backed `novalet up` for the real-guest benchmarks, and an API client for it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from novalet.console.proxies import free_ports_ini
from novalet.image.testimage import builder

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
CONF = ("[DEFAULT]\ncompute_driver = qemu\n"
        "[network]\nfixed_range = 10.233.0.0/24\nflat_network_bridge = nvbrbench\n"
        + free_ports_ini())  # the console proxies on free ports: never another cloud's
MARKER = "NOVALET-GUEST-READY uuid={uuid}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cloud:
    def __init__(self, url: str, state: Path) -> None:
        self.url = url
        self.state = state
        self.client = httpx.AsyncClient(base_url=url, timeout=120)
        self.headers: dict[str, str] = {}

    async def login(self) -> None:
        resp = await self.client.post("/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": "admin"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        resp.raise_for_status()
        self.headers = {"X-Auth-Token": resp.headers["X-Subject-Token"],
                        "OpenStack-API-Version": "compute 2.100"}

    async def setup(self) -> str:
        await self.client.post("/compute/v2.1/flavors", headers=self.headers, json={
            "flavor": {"name": "bench", "ram": 128, "vcpus": 1, "disk": 1, "id": "bench"}})
        resp = await self.client.get("/image/v2/images?name=novalet-tiny",
                                     headers=self.headers)
        return str(resp.json()["images"][0]["id"])

    async def boot(self, image: str, name: str, networks: Any = "none",
                   config_drive: bool = False, **extra: Any) -> str:
        """POST a server (flavor bench unless `extra` names flavorRef); its id."""
        resp = await self.client.post("/compute/v2.1/servers", headers=self.headers, json={
            "server": {"name": name, "imageRef": image, "flavorRef": "bench",
                       "networks": networks, "config_drive": config_drive, **extra}})
        resp.raise_for_status()
        return str(resp.json()["server"]["id"])

    async def wait_marker(self, uuid: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = await self.client.post(f"/compute/v2.1/servers/{uuid}/action",
                                          headers=self.headers,
                                          json={"os-getConsoleOutput": {"length": 50}})
            if resp.status_code == 200 and MARKER.format(uuid=uuid) in resp.json()["output"]:
                return
            await asyncio.sleep(0.05)
        raise SystemExit(f"guest {uuid} never printed its marker")

    async def delete_all(self) -> None:
        resp = await self.client.get("/compute/v2.1/servers", headers=self.headers)
        ids = [s["id"] for s in resp.json()["servers"]]
        for uuid in ids:
            await self.client.delete(f"/compute/v2.1/servers/{uuid}", headers=self.headers)
        deadline = time.monotonic() + 300
        while (await self.client.get("/compute/v2.1/servers",
                                     headers=self.headers)).json()["servers"]:
            if time.monotonic() > deadline:
                raise SystemExit("servers were not deleted within 300 s")
            await asyncio.sleep(0.2)

    async def cleanup(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=120) as self.client:
            await self.login()
            await self.delete_all()
            headers = {**self.headers, "OpenStack-API-Version": "compute 2.35"}
            nets = (await self.client.get("/compute/v2.1/os-networks", headers=headers)
                    ).json()["networks"]
            for net in nets:
                await self.client.delete(f"/compute/v2.1/os-networks/{net['id']}",
                                         headers=headers)
            await asyncio.sleep(3)  # the network service takes the bridge down


def start(state: Path, extra_conf: str = "") -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = state.parent / "novalet.conf"
    conf.write_text(CONF + extra_conf)
    log = open(state.parent / "novalet.log", "w")
    proc = subprocess.Popen([str(BIN / "novalet"), "up", "--state-dir", str(state),
                             "--config-file", str(conf), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/compute/v2.1/", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    stop(proc)
    raise SystemExit((state.parent / "novalet.log").read_text())


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, then SIGKILL if it has not ended within a minute."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def kill_guests(state: Path) -> None:
    """End the QEMU of every guest still recorded in the state dir (they run detached
    and outlive the cloud): the last resort when deleting them through the API failed."""
    for pidfile in (state / "instances").glob("*/qemu.pid"):
        text = pidfile.read_text().strip()
        cmdline = Path(f"/proc/{text}/cmdline")
        if text.isdigit() and cmdline.exists() and str(pidfile.parent).encode() in \
                cmdline.read_bytes():
            os.kill(int(text), signal.SIGKILL)


def bench_image() -> Path:
    """The benches' test image (qcow2, kernel and initramfs beside it), built if missing."""
    image = ROOT / ".cache" / "bench-testimage" / "novalet-tiny.qcow2"
    builder.build_test_image(image, progress=lambda line: print(line, file=sys.stderr))
    return image


def place_test_image(image: Path, state: Path) -> None:
    """Copy the test image where a cloud's API, started on `state`, publishes it from."""
    target = builder.default_output(state)
    target.parent.mkdir(parents=True, exist_ok=True)
    for src, dst in ((image, target), (builder.kernel_path(image),
                                       builder.kernel_path(target)),
                     (builder.ramdisk_path(image), builder.ramdisk_path(target))):
        shutil.copyfile(src, dst)


@contextmanager
def running_cloud(extra_conf: str = "") -> Iterator[Cloud]:
    """A fresh cloud with the test image (built if missing); guests and networks are
    deleted before it stops, since they would outlive it."""
    image = bench_image()
    with tempfile.TemporaryDirectory(prefix="novalet-bench-") as tmp:
        state = Path(tmp) / "state"
        place_test_image(image, state)
        proc, url = start(state, extra_conf)
        cloud = Cloud(url, state)
        try:
            yield cloud
        finally:
            try:
                asyncio.run(cloud.cleanup())
            finally:
                stop(proc)
                kill_guests(state)
