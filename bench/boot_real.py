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
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from realcloud import MARKER, Cloud, running_cloud


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
        for flag in ("-pidfile", "-vnc", "-spice"):
            if flag in argv:
                i = argv.index(flag)
                del argv[i:i + 2]
        # The guest's tap belongs to the deleted server, and so do the ports of its
        # displays and serial console; eight copies can't share them: user networking,
        # no display, the serial port written to console.log only.
        argv = [re.sub(r"^tap,id=(net\d+),.*$", r"user,id=\1,restrict=on", a) for a in argv]
        argv = [re.sub(r"^socket,id=serial0,.*,logfile=(.+),logappend=on$",
                       r"file,id=serial0,path=\1,append=on", a) for a in argv]
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
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i in range(count):
            procs.append(hand.start(i))
        for _, log in procs:
            wait_file_marker(log, hand.uuid)
        return time.monotonic() - started
    finally:  # a failed run must not leave its qemus behind
        for proc, _ in procs:
            proc.kill()
            proc.wait()


async def api_boots(cloud: Cloud, image: str, count: int, tag: str) -> float:
    started = time.monotonic()
    # A config drive, which the hand-started copies reuse (force_config_drive is off).
    uuids = await asyncio.gather(*[cloud.boot(image, f"{tag}-{i}", config_drive=True)
                                   for i in range(count)])
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


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with running_cloud() as cloud:
        figures = asyncio.run(measure(cloud, cloud.state.parent / "hand"))
    print(f"novalet bench/boot_real.py  ({os.cpu_count()} cores, TCG unless KVM works)")
    for name, value in figures.items():
        print(f"  {name:34} {value}")


if __name__ == "__main__":
    main()
