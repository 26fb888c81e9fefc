#!/usr/bin/env python3
"""Boot-rate and API-latency benchmark of `novalet up` with the fake driver.

Starts its own cloud on a free loopback port (or uses --url; --multihost N runs
every service as its own process with N compute hosts; --api-workers N runs N API
processes on the one port, over RabbitMQ and PostgreSQL), then measures:
100 separate boots at concurrency 10, one min_count=100 boot, deleting them,
GET /servers/detail at 100 and 1000 servers, GET /flavors latency and rate
(wrk at concurrency 10), time from start to serving, and peak RSS.
Prints the figures; it is not a test and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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

from novalet.console.proxies import free_ports_ini

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
CONF = """[DEFAULT]
compute_driver = fake
[fake]
vcpus = 1024
memory_mb = 4194304
disk_gb = 1048576
""" + free_ports_ini()  # the console proxies on free ports: never another cloud's


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class Bench:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.AsyncClient(base_url=url, timeout=120,
                                        limits=httpx.Limits(max_connections=20))
        self.headers: dict[str, str] = {}

    async def login(self, user: str, password: str, project: str) -> None:
        resp = await self.client.post("/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
        resp.raise_for_status()
        self.headers = {"X-Auth-Token": resp.headers["X-Subject-Token"],
                        "OpenStack-API-Version": "compute 2.100"}

    async def lift_quotas(self, project: str) -> None:
        """Make the project's instances, cores and ram unlimited (as admin): the
        benchmark boots 1000 servers in it, far past the default quotas."""
        await self.login("admin", "admin", "admin")
        resp = await self.client.get("/identity/v3/projects", params={"name": project},
                                     headers=self.headers)
        resp.raise_for_status()
        project_id = resp.json()["projects"][0]["id"]
        resp = await self.client.put(
            f"/compute/v2.1/os-quota-sets/{project_id}", headers=self.headers,
            json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
        resp.raise_for_status()

    async def image(self) -> str:
        resp = await self.client.post("/image/v2/images", headers=self.headers, json={
            "name": "bench", "disk_format": "qcow2", "container_format": "bare"})
        image_id = resp.json()["id"]
        await self.client.put(f"/image/v2/images/{image_id}/file", content=b"x" * 1024,
                              headers={**self.headers,
                                       "Content-Type": "application/octet-stream"})
        return str(image_id)

    async def post_server(self, image_id: str, name: str, count: int = 1) -> float:
        body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "1",
                           "networks": "none", "min_count": count, "max_count": count}}
        start = time.perf_counter()
        resp = await self.client.post("/compute/v2.1/servers", json=body, headers=self.headers)
        elapsed = time.perf_counter() - start
        if resp.status_code != 202:
            raise SystemExit(f"boot failed: {resp.status_code} {resp.text}")
        return elapsed

    async def statuses(self) -> dict[str, str]:
        resp = await self.client.get("/compute/v2.1/servers/detail", headers=self.headers)
        return {s["id"]: s["status"] for s in resp.json()["servers"]}

    async def wait_all(self, count: int, status: str = "ACTIVE") -> None:
        while True:
            seen = await self.statuses()
            if "ERROR" in seen.values():
                failed = next(sid for sid, st in seen.items() if st == "ERROR")
                resp = await self.client.get(f"/compute/v2.1/servers/{failed}",
                                             headers=self.headers)
                raise SystemExit(f"server {failed} went to ERROR: "
                                 f"{resp.json()['server'].get('fault')}")
            if sum(1 for s in seen.values() if s == status) >= count:
                return
            await asyncio.sleep(0.05)

    async def delete_all(self) -> None:
        ids = list(await self.statuses())
        sem = asyncio.Semaphore(10)

        async def one(sid: str) -> None:
            async with sem:
                await self.client.delete(f"/compute/v2.1/servers/{sid}", headers=self.headers)

        await asyncio.gather(*[one(s) for s in ids])
        while await self.statuses():
            await asyncio.sleep(0.05)

    async def get_p50(self, path: str, n: int = 20) -> float:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            resp = await self.client.get(path, headers=self.headers)
            times.append(time.perf_counter() - start)
            resp.raise_for_status()
        return statistics.median(times)


async def boots(bench: Bench) -> dict[str, str]:
    out: dict[str, str] = {}
    image_id = await bench.image()
    sem = asyncio.Semaphore(10)

    async def one(i: int) -> float:
        async with sem:
            return await bench.post_server(image_id, f"b-{i}")

    start = time.perf_counter()
    posts = await asyncio.gather(*[one(i) for i in range(100)])
    await bench.wait_all(100)
    wall = time.perf_counter() - start
    out["100 boots, separate POSTs @10"] = (f"{wall:.2f} s ({100 / wall:.1f} servers/s), "
                                            f"POST p50 {ms(pct(posts, .5))}, "
                                            f"p95 {ms(pct(posts, .95))}")
    out["GET /servers/detail @100 p50"] = ms(await bench.get_p50(
        "/compute/v2.1/servers/detail"))
    start = time.perf_counter()
    await bench.delete_all()
    out["delete 100"] = f"{time.perf_counter() - start:.2f} s"
    start = time.perf_counter()
    await bench.post_server(image_id, "multi", 100)
    await bench.wait_all(100)
    out["1 POST min_count=100"] = f"{time.perf_counter() - start:.2f} s"
    for i in range(9):
        await bench.post_server(image_id, f"m{i}", 100)
    await bench.wait_all(1000)
    out["GET /servers/detail @1000 p50"] = ms(await bench.get_p50(
        "/compute/v2.1/servers/detail", 10))
    start = time.perf_counter()
    await bench.delete_all()
    out["delete 1000"] = f"{time.perf_counter() - start:.2f} s"
    return out


def wrk_flavors(url: str, token: str, connections: int) -> str:
    """p50 latency and rate of GET /flavors with `connections` concurrent clients."""
    if not shutil.which("wrk"):
        return "wrk not installed (scripts/install.sh installs it)"
    result = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", "-d5s", "--latency",
         "-H", f"X-Auth-Token: {token}", f"{url}/compute/v2.1/flavors"],
        capture_output=True, text=True, check=True)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    p50 = re.search(r"50%\s+([\d.]+\w+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    text = f"p50 {p50.group(1) if p50 else '?'}, {rate.group(1) if rate else '?'} req/s"
    return text + (f" ({errors.group(1)} errors)" if errors else "")


def start_cloud(state: Path, extra_conf: str = ""
                ) -> tuple[subprocess.Popen[bytes], str, float]:
    (state / "novalet.conf").write_text(CONF)
    (state / "extra.conf").write_text(extra_conf)  # a second file: it may repeat sections
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "novalet"), "up", "--state-dir", str(state / "s"),
                             "--config-file", str(state / "novalet.conf"),
                             "--config-file", str(state / "extra.conf"), "--port",
                             str(port)], stdout=subprocess.DEVNULL,
                            stderr=open(state / "log", "w"))
    while True:
        try:
            if httpx.get(f"{url}/compute/v2.1/", timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - start
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit((state / "log").read_text())
        time.sleep(0.01)


def children(pid: int) -> list[int]:
    """The processes `pid` started ([api] workers beyond the first)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(url: str) -> dict[str, str]:
    bench = Bench(url)
    await bench.lift_quotas("demo")
    await bench.login("demo", "demo", "demo")
    figures = await boots(bench)
    token = bench.headers["X-Auth-Token"]
    figures["GET /flavors @1 (wrk)"] = wrk_flavors(url, token, 1)
    figures["GET /flavors @10 (wrk)"] = wrk_flavors(url, token, 10)
    await bench.client.aclose()
    return figures


def run_up_with_workers(api_workers: int) -> dict[str, str]:
    """`novalet up` over RabbitMQ and PostgreSQL (scripts/backing-services.sh), which
    more than one API process needs, with [api] workers = api_workers."""
    sys.path.insert(0, str(REPO))
    from tests.multihost.conftest import backing_urls, provisioned

    with tempfile.TemporaryDirectory() as tmp, provisioned(backing_urls()) as (bus, db):
        # One process carries conductor, scheduler and compute over AMQP here: with 900
        # instances in flight, a scheduler call waited past the default 60 s on 2 busy
        # cores (with one API worker as with two), so give calls longer.
        extra = (f"[DEFAULT]\ntransport_url = {bus}\nrpc_response_timeout = 300\n"
                 f"[database]\nconnection = {db}\n"
                 f"[api]\nworkers = {api_workers}\n[metadata]\nport = 0\n")
        proc, url, startup = start_cloud(Path(tmp), extra)
        try:
            figures = {"start to serving": f"{startup:.2f} s"}
            figures.update(asyncio.run(run(url)))
            figures["peak RSS of novalet up"] = f"{peak_rss_mb(proc.pid):.0f} MB"
            if api_workers > 1:
                figures["peak RSS of extra API workers"] = ", ".join(
                    f"{peak_rss_mb(pid):.0f} MB" for pid in children(proc.pid))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    return figures


def run_multihost(computes: int, api_workers: int = 1) -> dict[str, str]:
    """The same figures from a multi-process cloud: api (api_workers processes on
    its port), conductor, scheduler and `computes` fake compute hosts over RabbitMQ
    and PostgreSQL (started by scripts/backing-services.sh), each its own process."""
    sys.path.insert(0, str(REPO))
    from novalet.service.local_deployment import LocalDeployment
    from tests.multihost.conftest import backing_urls, provisioned

    with tempfile.TemporaryDirectory() as tmp, provisioned(backing_urls()) as (bus, db):
        fake = {"vcpus": 1024, "memory_mb": 4194304, "disk_gb": 1048576}
        cloud = LocalDeployment(Path(tmp), bus, db,
                                [f"compute-{i + 1}" for i in range(computes)],
                                options={"fake": fake, "api": {"workers": api_workers}})
        start = time.perf_counter()
        try:
            cloud.start_all()
            cloud.wait_api()
            figures = {"start to serving (all processes)": f"{time.perf_counter() - start:.2f} s"}
            figures.update(asyncio.run(run(cloud.url)))
            figures["peak RSS per process"] = ", ".join(
                f"{p.name} {peak_rss_mb(p.popen.pid):.0f} MB" for p in cloud.processes.values()
                if p.popen is not None)
            api = cloud.processes["api@controller"].popen
            if api is not None and children(api.pid):
                figures["peak RSS of extra API workers"] = ", ".join(
                    f"{peak_rss_mb(pid):.0f} MB" for pid in children(api.pid))
        finally:
            cloud.stop_all()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running cloud (skips start-up and RSS)")
    parser.add_argument("--multihost", type=int, metavar="N", default=0,
                        help="run every service as its own process over RabbitMQ and "
                             "PostgreSQL, with N fake compute hosts")
    parser.add_argument("--api-workers", type=int, metavar="N", default=1,
                        help="[api] workers: N API processes on the one port (above 1, "
                             "novalet up runs over RabbitMQ and PostgreSQL)")
    parser.add_argument("--rabbit", action="store_true",
                        help="run novalet up over RabbitMQ and PostgreSQL (implied by "
                             "--api-workers above 1): the baseline for more workers")
    args = parser.parse_args()
    if args.url:
        figures = asyncio.run(run(args.url))
    elif args.multihost:
        figures = run_multihost(args.multihost, args.api_workers)
    elif args.api_workers > 1 or args.rabbit:
        figures = run_up_with_workers(args.api_workers)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            proc, url, startup = start_cloud(Path(tmp))
            try:
                figures = {"start to serving": f"{startup:.2f} s"}
                figures.update(asyncio.run(run(url)))
                figures["peak RSS of novalet up"] = f"{peak_rss_mb(proc.pid):.0f} MB"
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    mode = f"{args.multihost} compute processes" if args.multihost else "novalet up"
    if not args.multihost and (args.rabbit or args.api_workers > 1):
        mode += " over RabbitMQ and PostgreSQL"
    mode += f", {args.api_workers} API worker{'s' if args.api_workers > 1 else ''}"
    print(f"novalet bench/boot_fake.py  ({os.cpu_count()} cores, {mode})")
    for name, value in figures.items():
        print(f"  {name:34} {value}")


if __name__ == "__main__":
    main()
