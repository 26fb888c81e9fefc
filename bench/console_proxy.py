#!/usr/bin/env python3
"""Console benchmark: issuing console URLs and opening consoles through the proxies.

Runs a whole cloud in this process (fake driver, in-process bus, SQLite in a
temporary directory; the proxies on free ports), boots --servers servers, then
prints:

- POST /servers/{id}/remote-consoles (novnc) latency p50 / p95: the compute
  host's answer, the hashed token written, the URL;
- opening a console: from the URL to the display's first bytes through the noVNC
  websocket proxy (upgrade, token check through the conductor and the compute
  host, connect, RFB greeting), p50 / p95; the same for the native VNC proxy
  (RFB handshake with the token as VNC password);
- relay throughput of the serial websocket proxy to an echoing display (MiB/s,
  both ways);
- the threads and memory --concurrent open noVNC consoles cost the process.

Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import struct
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from schedule_scale import Client, percentile
from websockets.sync.client import connect

from novalet import config
from novalet.console import vnc_auth
from novalet.console.proxies import PORT_OPTIONS
from novalet.service.allinone import AllInOne

V = "/compute/v2.1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--servers", type=int, default=10, help="servers to boot")
    parser.add_argument("--samples", type=int, default=200, help="timed URLs and opens")
    parser.add_argument("--mib", type=int, default=16, help="MiB relayed for throughput")
    parser.add_argument("--concurrent", type=int, default=100,
                        help="noVNC consoles held open at once")
    return parser.parse_args()


def make_conf(state: Path) -> config.Config:
    conf = config.Config()
    for section, name, value in (
            ("DEFAULT", "state_path", str(state)), ("DEFAULT", "host", "fake-host-1"),
            ("DEFAULT", "compute_driver", "fake"), ("metadata", "port", 0),
            ("api", "public_url", "http://novalet.bench"),
            *((section, option, 0) for section, option in PORT_OPTIONS)):
        conf.set(section, name, value)
    return conf


def token_of(url: str) -> str:
    query = parse_qs(urlsplit(url).query)
    if "path" in query:  # noVNC: the websocket path carries the token
        query = parse_qs(urlsplit(unquote(query["path"][0])).query)
    return query.get("token", query.get("VncPassword", [""]))[0]


def ms(values: list[float]) -> str:
    return (f"p50 {statistics.median(values) * 1000:.1f} ms  "
            f"p95 {percentile(values, 0.95) * 1000:.1f} ms")


async def console_url(client: Client, server_id: str, console_type: str) -> str:
    protocol = {"novnc": "vnc", "xvpvnc": "vnc", "serial": "serial"}[console_type]
    resp = await client.request("POST", f"{V}/servers/{server_id}/remote-consoles", json={
        "remote_console": {"protocol": protocol, "type": console_type}})
    url: str = resp.json()["remote_console"]["url"]
    return url


def open_novnc(port: int, token: str, held: ExitStack) -> float:
    """Seconds from the URL to the display's RFB greeting; the console stays open
    until `held` closes."""
    began = time.perf_counter()
    ws = held.enter_context(connect(f"ws://127.0.0.1:{port}/?token={token}", max_size=None))
    greeting = ws.recv(timeout=10)
    assert isinstance(greeting, bytes) and greeting.startswith(b"RFB ")
    return time.perf_counter() - began


def open_native(port: int, password: str) -> float:
    """The RFB 3.8 handshake with VNC auth, up to the display's ServerInit."""
    import socket
    began = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.recv(12)
        sock.sendall(b"RFB 003.008\n")
        count = sock.recv(1)[0]
        sock.recv(count)
        sock.sendall(b"\x02")
        challenge = sock.recv(16)
        sock.sendall(vnc_auth.response(password, challenge))
        assert sock.recv(4) == b"\0\0\0\0", "VNC auth refused"
        sock.sendall(b"\x01")  # ClientInit, shared
        header = sock.recv(24)
        (name_length,) = struct.unpack(">I", header[20:24])
        sock.recv(name_length)
    return time.perf_counter() - began


def serial_throughput(port: int, token: str, mib: int) -> float:
    """MiB/s through the serial proxy to the echoing display and back, 256 KiB at a
    time (websockets' sync client holds its lock while a send blocks, so sending
    and receiving in bulk at once from two threads deadlocks the client itself)."""
    chunk, window = os.urandom(64 * 1024), 4
    with connect(f"ws://127.0.0.1:{port}/?token={token}", max_size=None) as ws:
        ws.recv(timeout=10)  # the display's greeting
        began = time.perf_counter()
        for _ in range(mib * 1024 * 1024 // (len(chunk) * window)):
            for _ in range(window):
                ws.send(chunk)
            received = 0
            while received < len(chunk) * window:
                received += len(ws.recv(timeout=30))
        return mib / (time.perf_counter() - began)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace, state: Path) -> None:
    cloud = AllInOne(make_conf(state), in_process_http=True)
    await cloud.start()
    ports = {name: proxy.port for name, proxy in cloud.console_proxies.running.items()}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cloud.app),
                                     base_url="http://novalet.bench", timeout=60) as http:
            client = Client(http)
            await client.login()
            servers = await boot(client, args.servers)
            await measure(args, client, servers, ports)
    finally:
        await cloud.stop()


async def boot(client: Client, count: int) -> list[str]:
    image_id = await client.image()
    await client.request("POST", f"{V}/servers", json={"server": {
        "name": "c", "imageRef": image_id, "flavorRef": "1", "networks": "none",
        "min_count": count, "max_count": count}})
    while True:
        resp = await client.request("GET", f"{V}/servers/detail")
        servers = resp.json()["servers"]
        if servers and all(s["status"] == "ACTIVE" for s in servers):
            return [s["id"] for s in servers]
        await asyncio.sleep(0.1)


async def measure(args: argparse.Namespace, client: Client, servers: list[str],
                  ports: dict[str, int]) -> None:
    issue, urls = [], []
    for n in range(args.samples):
        began = time.perf_counter()
        urls.append(await console_url(client, servers[n % len(servers)], "novnc"))
        issue.append(time.perf_counter() - began)
    print(f"POST remote-consoles (novnc), {args.samples} URLs: {ms(issue)}", flush=True)

    opens = []
    for url in urls:
        with ExitStack() as held:
            opens.append(await asyncio.to_thread(open_novnc, ports["novncproxy"],
                                                 token_of(url), held))
    print(f"open a noVNC console (URL to RFB greeting): {ms(opens)}", flush=True)

    natives = []
    for n in range(min(args.samples, 50)):
        password = token_of(await console_url(client, servers[n % len(servers)], "xvpvnc"))
        natives.append(await asyncio.to_thread(open_native, ports["xvpvncproxy"], password))
    print(f"open a native VNC console (handshake with VNC auth to ServerInit), "
          f"{len(natives)}: {ms(natives)}", flush=True)

    serial = token_of(await console_url(client, servers[0], "serial"))
    rate = await asyncio.to_thread(serial_throughput, ports["serialproxy"], serial, args.mib)
    print(f"serial websocket relay, {args.mib} MiB each way: {rate:.1f} MiB/s", flush=True)

    await hold_open(args, client, servers, ports["novncproxy"])


async def hold_open(args: argparse.Namespace, client: Client, servers: list[str],
                    port: int) -> None:
    tokens = [token_of(await console_url(client, servers[n % len(servers)], "novnc"))
              for n in range(args.concurrent)]
    threads, rss = proxy_threads(), rss_mib()
    with ExitStack() as held:
        for token in tokens:
            await asyncio.to_thread(open_novnc, port, token, held)
        await asyncio.sleep(0.5)
        # RSS counts this process's clients too (websockets runs a thread per client).
        print(f"{args.concurrent} noVNC consoles open at once: "
              f"+{proxy_threads() - threads} proxy threads, "
              f"+{rss_mib() - rss:.1f} MiB RSS (proxy and clients)", flush=True)


def proxy_threads() -> int:
    """Threads of the websocket proxies' connections (socketserver names them so)."""
    return sum("process_request_thread" in t.name for t in threading.enumerate())


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="novalet-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
