#!/usr/bin/env python3
"""Scheduler scale benchmark: many fake compute hosts, many servers, in one process.

Runs a whole cloud in this process (fake driver, in-process bus, SQLite under a
temporary directory unless --database is given) with --hosts compute hosts
([fake] extra_hosts), boots --servers servers in create requests of
--batch (min_count = max_count = batch), then prints:

- scheduler decision time per instance, p50 / p99 / max: measured inside the
  scheduler, from select_destinations' start to that instance's claim (the
  request's shared start-up, reading host states, split over its instances),
  in wall-clock time and in CPU time of the process (the database is SQLite in
  this process, so its work counts; a busy machine inflates only the first);
- the time of each create request until its servers are scheduled (the bench
  waits for a batch's builds to finish before sending the next);
- GET /servers/detail?all_tenants=1&limit=1000 latency p50 / p99 over --samples
  requests once every server exists.

Not a test: it asserts nothing. Targets (issue 6): decision p50 < 10 ms at 1000
hosts, detail p50 < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from novalet import config
from novalet.console.proxies import PORT_OPTIONS
from novalet.service.allinone import AllInOne
from novalet.service.runner import freeze_startup_objects

V = "/compute/v2.1"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Example: bench/schedule_scale.py --hosts 1000 --servers 10000 --batch 100",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000, help="fake compute hosts")
    parser.add_argument("--servers", type=int, default=10_000, help="servers to boot")
    parser.add_argument("--batch", type=int, default=100,
                        help="servers per create request (min_count = max_count)")
    parser.add_argument("--samples", type=int, default=20,
                        help="GET /servers/detail requests timed at the end")
    parser.add_argument("--database", default="",
                        help="database URL (default: SQLite in the state directory)")
    parser.add_argument("--state-dir", default="",
                        help="state directory (default: a temporary one, removed after)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    return parser.parse_args(argv)


def make_conf(state: Path, args: argparse.Namespace) -> config.Config:
    conf = config.Config()
    settings: list[tuple[str, str, Any]] = [
        ("DEFAULT", "state_path", str(state)), ("DEFAULT", "host", "fake-host-1"),
        ("DEFAULT", "compute_driver", "fake"), ("metadata", "port", 0),
        ("api", "public_url", "http://novalet.bench"),
        ("fake", "extra_hosts", args.hosts - 1),
        # A long heartbeat and down time: 1000 hosts' heartbeats are not what is measured.
        ("DEFAULT", "report_interval", 3600.0), ("DEFAULT", "service_down_time", 7200.0),
        ("DEFAULT", "sync_power_state_interval", 0.0),
        ("DEFAULT", "rpc_response_timeout", 600.0),
        ("conductor", "recovery_interval", 0.0),
        ("conductor", "scheduling_timeout", 3600.0),
        ("quota", "instances", -1), ("quota", "cores", -1), ("quota", "ram", -1),
        *((section, option, 0) for section, option in PORT_OPTIONS)]
    if args.database:
        settings.append(("database", "connection", args.database))
    for section, name, value in settings:
        try:
            conf.set(section, name, value)
        except config.ConfigError:  # an option this tree doesn't have (e.g. no quotas)
            pass
    return conf


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.token = ""

    async def login(self) -> None:
        resp = await self.http.post("/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": "admin"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        resp.raise_for_status()
        self.token = resp.headers["X-Subject-Token"]

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": "compute 2.100",
                   **kwargs.pop("headers", {})}
        resp = await self.http.request(method, path, headers=headers, **kwargs)
        if resp.status_code >= 400:
            raise SystemExit(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp

    async def image(self) -> str:
        resp = await self.request("POST", "/image/v2/images", json={
            "name": "bench", "disk_format": "qcow2", "container_format": "bare",
            "visibility": "public"})
        image_id: str = resp.json()["id"]
        await self.request("PUT", f"/image/v2/images/{image_id}/file", content=b"x" * 1024,
                           headers={"Content-Type": "application/octet-stream"})
        return image_id


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def building(client: Client) -> int:
    resp = await client.request("GET", f"{V}/servers?all_tenants=1&status=BUILD&limit=1000")
    return len(resp.json()["servers"])


async def run(args: argparse.Namespace, state: Path) -> None:
    conf = make_conf(state, args)
    started = time.perf_counter()
    cloud = AllInOne(conf, in_process_http=True)
    await cloud.start()
    freeze_startup_objects()  # as `novalet up` does once started
    print(f"cloud with {args.hosts} compute hosts up in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    transport = httpx.ASGITransport(app=cloud.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://novalet.bench",
                                     timeout=600) as http:
            client = Client(http)
            await client.login()
            image_id = await client.image()
            await boot_all(args, cloud, client, image_id)
            await time_detail(args, client)
    finally:
        await cloud.stop()
    report_decisions(cloud)


async def boot_all(args: argparse.Namespace, cloud: AllInOne, client: Client,
                   image_id: str) -> None:
    booted, batch_times = 0, []
    t0 = time.perf_counter()
    while booted < args.servers:
        count = min(args.batch, args.servers - booted)
        began = time.perf_counter()
        await client.request("POST", f"{V}/servers", json={"server": {
            "name": f"s{booted}", "imageRef": image_id, "flavorRef": "1",
            "networks": "none", "min_count": count, "max_count": count}})
        booted += count
        # Wait for this batch to be scheduled, then for its builds to end: they share
        # this process (one event loop) with the scheduler, whose decisions would
        # otherwise be timed with the builds' work interleaved.
        while len(cloud.scheduler.decision_times) < booted:
            await asyncio.sleep(0.02)
        batch_times.append(time.perf_counter() - began)
        while await building(client):
            await asyncio.sleep(0.2)
        if len(batch_times) % 10 == 0 or booted == args.servers:
            recent = list(cloud.scheduler.decision_times)[-count:]
            recent_cpu = list(cloud.scheduler.decision_cpu_times)[-count:]
            rate = booted / (time.perf_counter() - t0)
            print(f"  {booted:6d}/{args.servers} servers  batch {batch_times[-1]:.2f} s  "
                  f"decision p50 {statistics.median(recent) * 1000:.2f} ms "
                  f"(CPU {statistics.median(recent_cpu) * 1000:.2f} ms)  "
                  f"({rate:.0f} servers/s)", flush=True)
    print(f"booted {booted} servers in {time.perf_counter() - t0:.1f} s; create request "
          f"of {args.batch} until scheduled: p50 {statistics.median(batch_times):.2f} s",
          flush=True)


async def time_detail(args: argparse.Namespace, client: Client) -> None:
    path = f"{V}/servers/detail?all_tenants=1&limit=1000"
    await client.request("GET", path)  # warm-up
    times = []
    for _ in range(args.samples):
        began = time.perf_counter()
        resp = await client.request("GET", path)
        times.append(time.perf_counter() - began)
    shown = len(resp.json()["servers"])
    print(f"GET /servers/detail?all_tenants=1&limit=1000 ({shown} servers): "
          f"p50 {statistics.median(times) * 1000:.1f} ms  "
          f"p99 {percentile(times, 0.99) * 1000:.1f} ms  (target p50 < 300 ms)", flush=True)


def report_decisions(cloud: AllInOne) -> None:
    decisions = list(cloud.scheduler.decision_times)
    if not decisions:
        print("no scheduling decisions recorded")
        return
    print(f"scheduler decision per instance ({len(decisions)}), wall clock: "
          f"p50 {statistics.median(decisions) * 1000:.2f} ms  "
          f"p99 {percentile(decisions, 0.99) * 1000:.2f} ms  "
          f"max {max(decisions) * 1000:.2f} ms  (target p50 < 10 ms)", flush=True)
    cpu = list(cloud.scheduler.decision_cpu_times)
    print(f"  the same in CPU time of this process: p50 {statistics.median(cpu) * 1000:.2f} ms"
          f"  p99 {percentile(cpu, 0.99) * 1000:.2f} ms  (what a loaded machine doesn't "
          f"inflate)", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)
    if args.hosts < 1 or args.servers < 1 or args.batch < 1:
        print("--hosts, --servers and --batch must be at least 1", file=sys.stderr)
        return 2
    if args.state_dir:
        asyncio.run(run(args, Path(args.state_dir)))
    else:
        with tempfile.TemporaryDirectory(prefix="novalet-bench-") as tmp:
            asyncio.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
