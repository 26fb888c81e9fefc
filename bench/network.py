#!/usr/bin/env python3
"""What networking costs: boot time with and without a network, and metadata rate.

On a QEMU-backed `novalet up` (test image built if missing):
- POST /servers to the guest's ready marker with `networks: none` and with
  `networks: auto` (tap on the bridge, DHCP from dnsmasq, firewall rules),
  median of 5 each, and the difference;
- requests per second the metadata service answers for one instance (wrk,
  10 connections, 5 s), identified the way a guest's request is: by its
  fixed IP, carried here in X-Forwarded-For from loopback (a trusted proxy),
  because a process on the host can't send from a guest's address.
Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import time

from realcloud import Cloud, running_cloud

METADATA_PORT = 18775
EXTRA = f"[metadata]\nport = {METADATA_PORT}\ntrusted_proxies = 127.0.0.1\n"


async def boot_times(cloud: Cloud, image: str, networks: str) -> list[float]:
    times = []
    for i in range(5):
        started = time.monotonic()
        # With a config drive either way: without one and without a network, the
        # guest waits for a metadata service it cannot reach (force_config_drive is
        # off), which would be measured as the cost of having no network.
        uuid = await cloud.boot(image, f"{networks}-{i}", networks=networks,
                                config_drive=True)
        await cloud.wait_marker(uuid)
        times.append(time.monotonic() - started)
        await cloud.delete_all()
    return times


async def fixed_ip_of_new_guest(cloud: Cloud, image: str) -> str:
    uuid = await cloud.boot(image, "metadata-target", networks="auto")
    await cloud.wait_marker(uuid)
    server = (await cloud.client.get(f"/compute/v2.1/servers/{uuid}",
                                     headers=cloud.headers)).json()["server"]
    return str(next(iter(server["addresses"].values()))[0]["addr"])


def metadata_rate(ip: str) -> str:
    if not shutil.which("wrk"):
        return "wrk not installed (scripts/install.sh installs it)"
    out = subprocess.run(
        ["wrk", "-t2", "-c10", "-d5s", "--latency", "-H", f"X-Forwarded-For: {ip}",
         f"http://127.0.0.1:{METADATA_PORT}/openstack/latest/meta_data.json"],
        capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    text = f"{rate.group(1) if rate else '?'} req/s, p50 {p50.group(1) if p50 else '?'}"
    return text + (f" ({bad.group(1)} non-2xx!)" if bad else "")


async def measure(cloud: Cloud) -> dict[str, str]:
    await cloud.login()
    image = await cloud.setup()
    without = statistics.median(await boot_times(cloud, image, "none"))
    with_net = statistics.median(await boot_times(cloud, image, "auto"))
    ip = await fixed_ip_of_new_guest(cloud, image)
    return {"boot to marker, networks none": f"{without:.2f} s",
            "boot to marker, networks auto": f"{with_net:.2f} s",
            "networking adds": f"{with_net - without:+.2f} s",
            "metadata meta_data.json @10": metadata_rate(ip)}


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with running_cloud(EXTRA) as cloud:
        figures = asyncio.run(measure(cloud))
    print(f"novalet bench/network.py  ({os.cpu_count()} cores)")
    for name, value in figures.items():
        print(f"  {name:34} {value}")


if __name__ == "__main__":
    main()
