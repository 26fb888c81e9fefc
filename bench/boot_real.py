#!/usr/bin/env python3
"""Real-guest boot benchmark: what Novalet adds on top of QEMU itself.

Starts `novalet up` (QEMU driver) on a free loopback port with the test image
(built with `novalet image build-test` if missing), then measures
- POST /servers to the guest's ready marker on its console, median of 5;
- the same image started by hand with the very argv Novalet used (read from
  /proc), from process start to the marker in its serial log, median of 5;
- 8 servers booted at once through the API vs 8 qemu started by hand at once;
- resident memory per guest.
Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from novalet.image.testimage import builder

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
CONF = "[DEFAULT]\ncompute_driver = qemu\n"
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

    async def boot(self, image: str, name: str) -> str:
        resp = await self.client.post("/compute/v2.1/servers", headers=self.headers, json={
            "server": {"name": name, "imageRef": image, "flavorRef": "bench",
                       "networks": "none"}})
        resp.raise_for_status()
        return str(resp.json()["server"]["id"])

    async def wait_marker(self, uuid: str) -> None:
        while True:
            resp = await self.client.post(f"/compute/v2.1/servers/{uuid}/action",
                                          headers=self.headers,
                                          json={"os-getConsoleOutput": {"length": 50}})
            if resp.status_code == 200 and MARKER.format(uuid=uuid) in resp.json()["output"]:
                return
            await asyncio.sleep(0.05)

    async def delete_all(self) -> None:
        resp = await self.client.get("/compute/v2.1/servers", headers=self.headers)
        ids = [s["id"] for s in resp.json()["servers"]]
        for uuid in ids:
            await self.client.delete(f"/compute/v2.1/servers/{uuid}", headers=self.headers)
        while (await self.client.get("/compute/v2.1/servers",
                                     headers=self.headers)).json()["servers"]:
            await asyncio.sleep(0.2)


def qemu_argv(uuid: str) -> list[str]:
    """The command line the driver started this guest's qemu with."""
    pid = subprocess.run(["pgrep", "-f", f"qemu-system.*{uuid}"], capture_output=True,
                         text=True, check=True).stdout.split()[0]
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def qemu_rss_mb() -> list[float]:
    sizes = []
    for pid in subprocess.run(["pgrep", "qemu-system"], capture_output=True,
                              text=True).stdout.split():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


class HandStarted:
    """qemu started by hand with Novalet's argv, each time on a fresh overlay of the
    same cached base and a copy of the same config drive (as a first boot)."""

    def __init__(self, template: list[str], uuid: str, instance_dir: Path, work: Path
                 ) -> None:
        self.template = template
        self.uuid = uuid
        self.instance_dir = instance_dir
        self.work = work
        info = json.loads(subprocess.run(
            ["qemu-img", "info", "-U", "--output=json", str(instance_dir / "disk")],
            capture_output=True, text=True, check=True).stdout)
        self.base, self.size = info["full-backing-filename"], info["virtual-size"]
        self.pristine = work / "pristine"
        self.pristine.mkdir(parents=True)
        shutil.copyfile(instance_dir / "disk.config", self.pristine / "disk.config")

    def start(self, index: int) -> tuple[subprocess.Popen[bytes], Path]:
        run_dir = self.work / f"run{index}"
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.copytree(self.pristine, run_dir)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", self.base, "-F",
                        "qcow2", str(run_dir / "disk"), str(self.size)], check=True)
        old = str(self.instance_dir)
        argv = [a.replace(old, str(run_dir)) for a in self.template if a != "-daemonize"]
        for flag in ("-pidfile", "-vnc"):
            if flag in argv:
                i = argv.index(flag)
                del argv[i:i + 2]
        proc = subprocess.Popen(argv, cwd=run_dir, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        return proc, run_dir / "console.log"


def wait_file_marker(path: Path, uuid: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and MARKER.format(uuid=uuid) in path.read_text(errors="replace"):
            return
        time.sleep(0.02)
    raise SystemExit(f"hand-started guest never printed its marker ({path})")


def hand_boots(hand: HandStarted, count: int) -> float:
    """Start `count` hand qemus at once; seconds until all printed their marker."""
    started = time.monotonic()
    procs = [hand.start(i) for i in range(count)]
    for _, log in procs:
        wait_file_marker(log, hand.uuid)
    elapsed = time.monotonic() - started
    for proc, _ in procs:
        proc.kill()
        proc.wait()
    return elapsed


async def api_boots(cloud: Cloud, image: str, count: int, tag: str) -> float:
    started = time.monotonic()
    uuids = await asyncio.gather(*[cloud.boot(image, f"{tag}-{i}") for i in range(count)])
    await asyncio.gather(*[cloud.wait_marker(u) for u in uuids])
    return time.monotonic() - started


async def measure(cloud: Cloud, work: Path) -> dict[str, str]:
    await cloud.login()
    image = await cloud.setup()
    singles = []
    for i in range(5):
        singles.append(await api_boots(cloud, image, 1, f"one{i}"))
        if i < 4:
            await cloud.delete_all()
    uuid = (await cloud.client.get("/compute/v2.1/servers", headers=cloud.headers)
            ).json()["servers"][0]["id"]
    hand = HandStarted(qemu_argv(uuid), uuid, cloud.state / "instances" / uuid, work)
    await cloud.delete_all()
    by_hand = [hand_boots(hand, 1) for _ in range(5)]
    api, manual = statistics.median(singles), statistics.median(by_hand)
    figures = {"POST to marker, median of 5": f"{api:.2f} s",
               "same argv by hand, median of 5": f"{manual:.2f} s",
               "orchestration overhead": f"{api - manual:+.2f} s"}
    eight = await api_boots(cloud, image, 8, "eight")
    rss = qemu_rss_mb()
    await cloud.delete_all()
    figures["8 at once through the API"] = f"{eight:.1f} s"
    figures["8 at once by hand"] = f"{hand_boots(hand, 8):.1f} s"
    figures["RSS per guest (8 running)"] = (f"{statistics.mean(rss):.0f} MB"
                                            if rss else "n/a")
    return figures


def start(state: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = state.parent / "novalet.conf"
    conf.write_text(CONF)
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
            time.sleep(0.05)
    raise SystemExit((state.parent / "novalet.log").read_text())


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    image = ROOT / ".cache" / "bench-testimage" / "novalet-tiny.qcow2"
    builder.build_test_image(image, progress=lambda line: print(line, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="novalet-bench-") as tmp:
        state = Path(tmp) / "state"
        target = builder.default_output(state)
        target.parent.mkdir(parents=True)
        for src, dst in ((image, target), (builder.kernel_path(image),
                                           builder.kernel_path(target)),
                         (builder.ramdisk_path(image), builder.ramdisk_path(target))):
            shutil.copyfile(src, dst)
        proc, url = start(state)
        cloud = Cloud(url, state)
        try:
            figures = asyncio.run(measure(cloud, Path(tmp) / "hand"))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    print(f"novalet bench/boot_real.py  ({os.cpu_count()} cores, TCG unless KVM works)")
    for name, value in figures.items():
        print(f"  {name:34} {value}")


if __name__ == "__main__":
    main()
