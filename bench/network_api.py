#!/usr/bin/env python3
"""What the network API and the plug wait cost, on `novalet up` with the fake driver.

Starts its own clouds (as bench/boot_fake.py does: `novalet up` on a free loopback
port, fake driver; `[quota] ports` lifted) and, as the demo member on a /22
network it makes through /network/v2.0:
- port create and delete rate (1000 ports, 10 at a time) and their p50 latency;
- GET /network/v2.0/ports p50 at 1000 ports (20 requests);
- server boot time (POST /servers to ACTIVE, polled every 5 ms; median of 15)
  through `networks: [{"port": P}]` (the port made before the clock starts) and
  `networks: [{"uuid": N}]`, on a cloud that waits for network-vif-plugged (the
  default) and on one with `vif_plugging_timeout = 0` (no wait): the difference
  is the plug wait's cost, target at most 50 ms. Since end-to-end times on a
  busy machine swing by more than that, also the compute host's own measure of
  its plug step (its log: "Plugged ports of … in …s"), plug call to the last
  event, against the plug call alone without the wait.
With --qemu, also the boot times on a QEMU-backed `novalet up` (bench/realcloud.py,
test image built if missing; Linux bridges, dnsmasq and nftables): POST to ACTIVE
(QEMU started; not the guest's boot), median of 5, both ways, with and without the
wait.
Prints the figures beside their targets; it is not a test and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from boot_fake import Bench, ms, pct, start_cloud

N = "/network/v2.0"
PORTS = 1000
BOOTS = 15
QUOTAS = "[quota]\nports = -1\nnetworks = -1\ninstances = -1\ncores = -1\nram = -1\n"


class NetBench(Bench):
    async def make_network(self, cidr: str) -> str:
        resp = await self.client.post(f"{N}/networks", headers=self.headers,
                                      json={"network": {"name": f"bench-{cidr}"}})
        resp.raise_for_status()
        network = str(resp.json()["network"]["id"])
        resp = await self.client.post(f"{N}/subnets", headers=self.headers, json={
            "subnet": {"network_id": network, "cidr": cidr, "ip_version": 4}})
        resp.raise_for_status()
        return network

    async def make_port(self, network: str) -> tuple[str, float]:
        started = time.perf_counter()
        resp = await self.client.post(f"{N}/ports", headers=self.headers,
                                      json={"port": {"network_id": network}})
        elapsed = time.perf_counter() - started
        if resp.status_code != 201:
            raise SystemExit(f"port create failed: {resp.status_code} {resp.text}")
        return str(resp.json()["port"]["id"]), elapsed

    async def delete_port(self, port: str) -> float:
        started = time.perf_counter()
        resp = await self.client.delete(f"{N}/ports/{port}", headers=self.headers)
        elapsed = time.perf_counter() - started
        if resp.status_code != 204:
            raise SystemExit(f"port delete failed: {resp.status_code} {resp.text}")
        return elapsed

    flavor = "1"

    async def boot_to_active(self, image: str, nic: dict[str, str]) -> tuple[str, float]:
        body = {"server": {"name": "bench", "imageRef": image, "flavorRef": self.flavor,
                           "networks": [nic]}}
        started = time.perf_counter()
        resp = await self.client.post("/compute/v2.1/servers", json=body,
                                      headers=self.headers)
        if resp.status_code != 202:
            raise SystemExit(f"boot failed: {resp.status_code} {resp.text}")
        uuid = str(resp.json()["server"]["id"])
        while True:
            server = (await self.client.get(f"/compute/v2.1/servers/{uuid}",
                                            headers=self.headers)).json()["server"]
            if server["status"] == "ACTIVE":
                return uuid, time.perf_counter() - started
            if server["status"] == "ERROR":
                raise SystemExit(f"server {uuid} went to ERROR: {server.get('fault')}")
            await asyncio.sleep(0.005)

    async def delete_server(self, uuid: str) -> None:
        await self.client.delete(f"/compute/v2.1/servers/{uuid}", headers=self.headers)
        while (await self.client.get(f"/compute/v2.1/servers/{uuid}",
                                     headers=self.headers)).status_code != 404:
            await asyncio.sleep(0.01)


async def at_concurrency(count: int, work: Callable[[int], Awaitable[float]],
                         concurrency: int = 10) -> tuple[float, list[float]]:
    """Run work(0..count-1), `concurrency` at a time: (wall seconds, each latency)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> float:
        async with gate:
            return await work(i)

    started = time.perf_counter()
    latencies = list(await asyncio.gather(*(one(i) for i in range(count))))
    return time.perf_counter() - started, latencies


async def port_figures(bench: NetBench, network: str) -> dict[str, str]:
    ports: list[str] = []

    async def create(i: int) -> float:
        port, elapsed = await bench.make_port(network)
        ports.append(port)
        return elapsed

    wall, created = await at_concurrency(PORTS, create)
    figures = {"port create @10": f"{PORTS / wall:.0f}/s, p50 {ms(pct(created, 0.5))}"}
    listing = []
    for _ in range(20):
        started = time.perf_counter()
        resp = await bench.client.get(f"{N}/ports", headers=bench.headers)
        listing.append(time.perf_counter() - started)
        assert len(resp.json()["ports"]) >= PORTS
    figures[f"GET /ports p50 at {PORTS} ports"] = ms(pct(listing, 0.5))
    wall, deleted = await at_concurrency(len(ports), lambda i: bench.delete_port(ports[i]))
    figures["port delete @10"] = f"{len(ports) / wall:.0f}/s, p50 {ms(pct(deleted, 0.5))}"
    return figures


async def boot_medians(bench: NetBench, image: str, network: str, boots: int = BOOTS
                       ) -> dict[str, float]:
    """Median seconds to ACTIVE booting on a port made before, and on the network."""
    on_port, on_network = [], []
    for _ in range(boots):  # interleaved, so drift hits both alike
        port, _ = await bench.make_port(network)
        uuid, elapsed = await bench.boot_to_active(image, {"port": port})
        on_port.append(elapsed)
        await bench.delete_server(uuid)
        await bench.delete_port(port)
        uuid, elapsed = await bench.boot_to_active(image, {"uuid": network})
        on_network.append(elapsed)
        await bench.delete_server(uuid)
    return {"port": statistics.median(on_port), "uuid": statistics.median(on_network)}


async def run_cloud(url: str, ports: bool) -> tuple[dict[str, str], dict[str, float]]:
    bench = NetBench(url)
    try:
        await bench.login("demo", "demo", "demo")
        image = await bench.image()
        network = await bench.make_network("10.90.0.0/22")
        figures = await port_figures(bench, network) if ports else {}
        await bench.boot_to_active(image, {"uuid": network})  # warm up (image cache)
        return figures, await boot_medians(bench, image, network)
    finally:
        await bench.client.aclose()


PLUG_LOG = re.compile(r"Plugged ports of \S+ in ([\d.]+)s")


def plug_steps(log: Path) -> list[float]:
    """The compute host's plug step of each build, from its log."""
    return [float(m.group(1)) for m in PLUG_LOG.finditer(log.read_text())]


def with_cloud(extra_conf: str, ports: bool) -> tuple[dict[str, str], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="novalet-bench-") as tmp:
        proc, url, _ = start_cloud(Path(tmp), QUOTAS + extra_conf)
        try:
            figures, boots = asyncio.run(run_cloud(url, ports))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        boots["plug step"] = statistics.median(plug_steps(Path(tmp) / "log"))
        return figures, boots


def with_qemu_cloud(wait: bool) -> dict[str, float]:
    import realcloud

    async def run(url: str) -> dict[str, float]:
        bench = NetBench(url)
        bench.flavor = "bench"
        try:
            await bench.login("admin", "admin", "admin")
            await bench.client.post("/compute/v2.1/flavors", headers=bench.headers, json={
                "flavor": {"name": "bench", "ram": 128, "vcpus": 1, "disk": 1,
                           "id": "bench"}})
            image = (await bench.client.get("/image/v2/images?name=novalet-tiny",
                                            headers=bench.headers)).json()["images"][0]["id"]
            network = (await bench.client.get(f"{N}/networks?router:external=false",
                                              headers=bench.headers)
                       ).json()["networks"][0]["id"]  # the cloud's flat network
            await bench.boot_to_active(image, {"uuid": network})  # warm up (image cache)
            return await boot_medians(bench, image, network, boots=5)
        finally:
            await bench.client.aclose()

    if not wait:  # its CONF opens [DEFAULT]: a second one would be a duplicate section
        realcloud.CONF = realcloud.CONF.replace("[DEFAULT]\n",
                                                "[DEFAULT]\nvif_plugging_timeout = 0\n", 1)
    with realcloud.running_cloud() as cloud:
        boots = asyncio.run(run(cloud.url))
        boots["plug step"] = statistics.median(plug_steps(cloud.state.parent / "novalet.log"))
        return boots


def print_boots(title: str, waiting: dict[str, float], no_wait: dict[str, float]) -> None:
    print(f"  {title:40} {'plug wait':>10} {'no wait':>10} {'wait adds':>10}   target")
    for nic in ("port", "uuid"):
        adds = waiting[nic] - no_wait[nic]
        print(f"  {'  networks: [{' + repr(nic) + ': ...}]':40} {ms(waiting[nic]):>10} "
              f"{ms(no_wait[nic]):>10} {ms(adds):>10}   <= 50 ms")
    if "plug step" in waiting and "plug step" in no_wait:
        adds = waiting["plug step"] - no_wait["plug step"]
        print(f"  {'  compute plug step (median, its log)':40} "
              f"{waiting['plug step'] * 1000:>7.2f} ms {no_wait['plug step'] * 1000:>7.2f} ms "
              f"{adds * 1000:>7.2f} ms   <= 50 ms")
    print(f"  {'  port minus uuid (plug wait on)':40} "
          f"{ms(waiting['port'] - waiting['uuid']):>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qemu", action="store_true",
                        help="also boot real guests (QEMU, Linux networking; needs root)")
    parser.add_argument("--qemu-only", action="store_true", help="only the QEMU boots")
    args = parser.parse_args()
    print(f"novalet bench/network_api.py  ({os.cpu_count()} cores)")
    if not args.qemu_only:
        figures, waiting = with_cloud("", ports=True)
        _, no_wait = with_cloud("[DEFAULT]\nvif_plugging_timeout = 0\n", ports=False)
        for name, value in figures.items():
            print(f"  {name:40} {value}")
        print_boots(f"fake: boot to ACTIVE, median of {BOOTS}", waiting, no_wait)
    if args.qemu or args.qemu_only:
        qemu_waiting = with_qemu_cloud(wait=True)
        print_boots("qemu: boot to ACTIVE, median of 5", qemu_waiting,
                    with_qemu_cloud(wait=False))
    print(f"  (load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
