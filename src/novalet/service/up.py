"""Runs the all-in-one cloud under an HTTP server until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from novalet import config, exceptions
from novalet.console.proxies import ProxyStartError
from novalet.service import api_workers
from novalet.service import preflight, state_lock
from novalet.service.allinone import AllInOne
from novalet.service.api import http_server
from novalet.service.runner import freeze_startup_objects
from novalet.service.bootstrap import clouds_yaml_path

LOG = logging.getLogger(__name__)


def banner(aio: AllInOne, seconds: float) -> str:
    conf = aio.conf
    clouds = clouds_yaml_path(aio.services)
    return "\n".join([
        f"Novalet is up in {seconds:.2f}s.",
        f"  Endpoint:    {conf.public_url}  (identity /identity/v3, compute /compute/v2.1,"
        " image /image, network /network)",
        f"  State dir:   {conf.state_path}",
        f"  clouds.yaml: {clouds}",
        *(f"  {title + ' console:':<20} {url}" for title, url in aio.console_proxies.urls()),
        "  Try:",
        *client_path_lines(),
        f"    export OS_CLIENT_CONFIG_FILE={clouds}",
        "    openstack --os-cloud novalet-demo server list     # demo user",
        "    openstack --os-cloud novalet flavor list          # admin",
        "  Stop with Ctrl-C; `make down` (or `novalet down --state-dir "
        f"{conf.state_path}`) also ends its guests, bridges and DHCP.",
    ])


def client_path_lines(bin_dir: Path | None = None, path: str | None = None) -> list[str]:
    """The line that puts the `openstack` client installed next to this novalet on the
    PATH, when the PATH doesn't find it already (it lives in the virtualenv, .venv/bin,
    which `make up` does not activate)."""
    bin_dir = bin_dir or Path(sys.executable).parent
    if shutil.which("openstack", path=os.environ.get("PATH", "") if path is None
                    else path) is not None:
        return []
    if not (bin_dir / "openstack").exists():
        return [f"    {bin_dir / 'pip'} install python-openstackclient   # no openstack "
                "client here yet"]
    return [f"    export PATH={bin_dir}:$PATH   # the openstack client is in {bin_dir}"]


async def serve(conf: config.Config, started_at: float) -> None:
    try:
        workers = api_workers.count(conf)  # [api] workers > 1: rabbit and a server DB
        # Bound here, not by uvicorn (which exits the process when it cannot bind):
        # a bind error is ours to word, and with more API processes the one socket is
        # theirs too.
        sock = api_workers.listen_socket(conf)
    except preflight.CannotListen as exc:
        raise SystemExit(f"novalet: cannot start:\n{exc.message}") from None
    except api_workers.ApiWorkersNotPossible as exc:
        raise SystemExit(f"Cannot start: {exc}") from None
    aio = AllInOne(conf)
    try:
        await aio.start()
    # NovaletError: e.g. another cloud runs this host's networking (HostNetworkTaken)
    except (ProxyStartError, exceptions.NovaletError) as exc:
        await aio.stop()
        sock.close()
        raise SystemExit(f"Cannot start: {exc}") from None
    freeze_startup_objects()
    server = http_server(aio.app, conf)
    pool = api_workers.WorkerPool(conf, sock, workers - 1) if workers > 1 else None
    try:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if not server.started:
            raise SystemExit("Cannot start: the API server did not start (its error is "
                             "logged above)")
        if pool is not None:
            try:
                await pool.start()
            except api_workers.ApiWorkerFailed as exc:
                server.should_exit = True
                await serving
                raise SystemExit(f"Cannot start: {exc}") from None
        print(banner(aio, time.monotonic() - started_at), flush=True)
        await serving
    finally:
        if pool is not None:
            await pool.stop()
        await aio.stop()
        print("Novalet stopped.", file=sys.stderr, flush=True)


def run(conf: config.Config, started_at: float) -> None:
    # The standard event loop, not uvloop: uvloop leaks one of its pipes into child
    # processes, and a daemonized qemu then holds it open for its whole life (the
    # compute service waited forever for the launch to finish).
    try:
        preflight.check_ports(conf)  # before any side effect (bridges, dnsmasq, guests)
    except preflight.PortsInUse as exc:
        raise SystemExit(f"novalet: cannot start:\n{exc.message}") from None
    conf.state_path.mkdir(parents=True, exist_ok=True)
    # held for the process's life: `novalet down` refuses while it is (and a second
    # `novalet up` on this state dir does not start)
    locks = state_lock.StateDirLocks(conf.state_path.resolve(), "up")
    try:
        locks.acquire()
    except exceptions.NovaletError as exc:
        raise SystemExit(f"novalet: cannot start: {exc.message}") from None
    try:
        asyncio.run(serve(conf, started_at))
    except KeyboardInterrupt:
        pass
    finally:
        locks.release()
