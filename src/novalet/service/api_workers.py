"""`[api] workers`: several API processes serving one listening socket.

The first process (`novalet api`, or `novalet up`) binds [api] listen:port once
and serves it itself; it then starts `workers - 1` more processes that inherit
the socket and serve it too, so the kernel hands each new connection to
whichever process accepts first. Every process has its own database pool and
bus connection: the extra ones reach conductor, scheduler and compute hosts over
RabbitMQ, which is why more than one worker needs `transport_url = rabbit://…`,
and a server database (SQLite is driven inline on the event loop, where another
process's lock would stall it). Their caches stay true to the database through
db/cache_generations.py.

The first process supervises the others: a worker that dies is started again
(a worker that dies three times in a row within its first seconds is a fault
in its configuration: the cloud stops with a message rather than spin). Workers
run in their own session, so Ctrl-C reaches only the first process, which stops
them with SIGTERM; a worker whose first process has gone (kill -9) stops itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from novalet import config, exceptions
from novalet.db.engine import async_url
from novalet.service import preflight

LOG = logging.getLogger(__name__)

START_TIMEOUT = 60.0  # seconds a worker may take to serve
QUICK_DEATH = 10.0  # a worker dying this soon after its start counts towards giving up
QUICK_DEATHS_TO_GIVE_UP = 3
STOP_TIMEOUT = 15.0


class ApiWorkersNotPossible(exceptions.NovaletError):
    msg_fmt = "%(reason)s"


class ApiWorkerFailed(exceptions.NovaletError):
    msg_fmt = "API worker %(number)d did not start: %(reason)s"


def count(conf: config.Config) -> int:
    """[api] workers, checked against what more than one worker needs."""
    workers = int(conf.get("api", "workers"))
    if workers < 1:
        raise ApiWorkersNotPossible(reason=f"[api] workers = {workers}: it must be 1 or more")
    if workers == 1:
        return 1
    if conf.get("DEFAULT", "transport_url").startswith("memory://"):
        raise ApiWorkersNotPossible(reason=(
            f"[api] workers = {workers} needs a message bus the API processes share: set "
            "[DEFAULT] transport_url = rabbit://USER:PASSWORD@HOST:5672/VHOST (the "
            "in-process memory:// bus reaches no other process), or workers = 1"))
    if async_url(conf.database_url).startswith("sqlite"):
        raise ApiWorkersNotPossible(reason=(
            f"[api] workers = {workers} needs a database server: set [database] "
            "connection = postgresql://… or mysql://… (SQLite serves one process), "
            "or workers = 1"))
    return workers


def listen_socket(conf: config.Config, command: str = "up") -> socket.socket:
    """The API's listening socket at [api] listen:port, bound once for every worker;
    preflight.CannotListen (naming the holder and how to pick another port) when it
    cannot be bound. `command`: `up` or `api`, which move the port differently."""
    listener = preflight.api_listener(conf, command)
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    try:
        sock = socket.create_server((listener.host, listener.port), family=family,
                                    backlog=2048)
    except OSError as exc:
        raise preflight.cannot_listen(listener, exc) from None
    return sock  # not inheritable: the workers get it by pass_fds, no other child may


@dataclass
class _Worker:
    number: int
    popen: subprocess.Popen[bytes]
    ready_fd: int  # read end: the worker writes one byte once it serves
    started: float


class WorkerPool:
    """Workers 2..N of the API, each its own process serving `sock`."""

    def __init__(self, conf: config.Config, sock: socket.socket, extra: int) -> None:
        self.conf = conf
        self.sock = sock
        self.extra = extra
        self.workers: dict[int, _Worker] = {}
        self.stopping = False
        self.quick_deaths = 0
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def pids(self) -> list[int]:
        return [w.popen.pid for w in self.workers.values()]

    async def start(self) -> None:
        """Start every worker and wait until each serves; ApiWorkerFailed otherwise."""
        for number in range(2, self.extra + 2):
            self.workers[number] = self._spawn(number)
        try:
            for worker in list(self.workers.values()):
                await self._until_ready(worker)
        except ApiWorkerFailed:
            await self.stop()
            raise
        self._supervisor = asyncio.create_task(self._supervise())

    def _spawn(self, number: int) -> _Worker:
        read_fd, write_fd = os.pipe()
        fd = self.sock.fileno()
        popen = subprocess.Popen(
            [sys.executable, "-m", "novalet.service.api_workers", str(fd), str(write_fd),
             str(number), str(os.getpid())],
            stdin=subprocess.PIPE, pass_fds=(fd, write_fd), start_new_session=True)
        os.close(write_fd)
        assert popen.stdin is not None
        popen.stdin.write(pickle.dumps(self.conf))
        popen.stdin.close()
        return _Worker(number, popen, read_fd, time.monotonic())

    async def _until_ready(self, worker: _Worker) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            readable, _, _ = select.select([worker.ready_fd], [], [], 0)
            if readable:
                if os.read(worker.ready_fd, 1):
                    LOG.info("API worker %d (pid %d) serves", worker.number, worker.popen.pid)
                    return
                break  # the pipe closed: the worker is gone
            if worker.popen.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise ApiWorkerFailed(number=worker.number,
                                  reason=f"it did not serve within {START_TIMEOUT:.0f}s")
        code = worker.popen.wait()
        raise ApiWorkerFailed(number=worker.number,
                              reason=f"it exited with status {code} (its log says why)")

    async def _supervise(self) -> None:
        while not self.stopping:
            await asyncio.sleep(0.25)
            for number, worker in list(self.workers.items()):
                code = worker.popen.poll()
                if code is None or self.stopping:
                    continue
                os.close(worker.ready_fd)
                lived = time.monotonic() - worker.started
                self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH else 0
                if self.quick_deaths >= QUICK_DEATHS_TO_GIVE_UP:
                    self._give_up(number, code)
                    return
                LOG.warning("API worker %d (pid %d) exited with status %s after %.0fs; "
                            "starting it again", number, worker.popen.pid, code, lived)
                self.workers[number] = replacement = self._spawn(number)
                try:
                    await self._until_ready(replacement)
                except ApiWorkerFailed as exc:
                    LOG.error("%s", exc)

    def _give_up(self, number: int, code: int) -> None:
        message = (f"novalet: API worker {number} exited (status {code}) "
                   f"{QUICK_DEATHS_TO_GIVE_UP} times in a row within {QUICK_DEATH:.0f}s of "
                   "its start; stopping the API (see the log above for why)")
        LOG.error("%s", message)
        print(message, file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # the usual way out: every part stops

    async def stop(self) -> None:
        """SIGTERM every worker and wait for them (SIGKILL past STOP_TIMEOUT)."""
        self.stopping = True
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            self._supervisor.cancel()
        for worker in self.workers.values():
            if worker.popen.poll() is None:
                worker.popen.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in self.workers.values():
            while worker.popen.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if worker.popen.poll() is None:
                LOG.warning("API worker %d (pid %d) did not stop in %.0fs; killing it",
                            worker.number, worker.popen.pid, STOP_TIMEOUT)
                worker.popen.kill()
                worker.popen.wait()
            try:
                os.close(worker.ready_fd)
            except OSError:
                pass  # closed when it died


# --- the worker process ---------------------------------------------------------

async def _serve(conf: config.Config, sock: socket.socket, ready_fd: int, number: int,
                 parent: int) -> int:
    from novalet.api.app import build_app
    from novalet.db.engine import Database
    from novalet.network.rpcapi import NetworkRPC
    from novalet.service.api import ApiServices, http_server
    from novalet.service.roles import make_bus
    from novalet.service.runner import freeze_startup_objects

    # uvicorn catches SIGTERM/SIGINT while it serves and raises them again with the
    # handlers it found once it is done: make those no-ops, so the worker then closes
    # its bus and database instead of dying at that point.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    bus = make_bus(conf, "api")
    services = ApiServices(conf, bus=bus, db=Database(conf.database_url))
    services.network.refresh_hosts = NetworkRPC(bus).refresh
    server = http_server(build_app(services), conf)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            freeze_startup_objects()
            os.write(ready_fd, b"1")
        while not serving.done():
            if os.getppid() != parent:  # the first process is gone: no orphans serving
                LOG.warning("API worker %d: its parent %d is gone; stopping", number, parent)
                server.should_exit = True
            await asyncio.wait({serving}, timeout=1.0)
        await serving
        return 0 if server.started else 1
    finally:
        os.close(ready_fd)
        await bus.close()
        await services.db.close()


def main(argv: list[str]) -> int:
    fd, ready_fd, number, parent = (int(a) for a in argv)
    conf: config.Config = pickle.load(sys.stdin.buffer)
    from novalet.common.context import setup_logging
    setup_logging(conf.get("DEFAULT", "debug"))
    sock = socket.socket(fileno=fd)
    return asyncio.run(_serve(conf, sock, ready_fd, number, parent))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
