"""The services of a multi-host cloud, each run alone by `novalet <service>`.

They are the classes `novalet up` runs together (service/allinone.py), built
from one configuration with the bus and database it names. Compute and
network hosts get no database handle: they reach records through the
conductor, so their configuration needs no [database] connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from novalet import config
from novalet.common.urls import without_password
from novalet.db import migrate
from novalet.db.engine import Database
from novalet.rpc import bus as rpc_bus
from novalet.rpc import identity

LOG = logging.getLogger(__name__)


class Role(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class SchemaNotCurrent(RuntimeError):
    pass


def make_bus(conf: config.Config, name: str) -> rpc_bus.Bus:
    return rpc_bus.from_url(
        conf.get("DEFAULT", "transport_url"), conf.get("DEFAULT", "rpc_response_timeout"),
        identity.Senders.from_conf(conf), **_amqp_options(conf, name))


def _amqp_options(conf: config.Config, name: str) -> dict[str, object]:
    if conf.get("DEFAULT", "transport_url").startswith("memory://"):
        return {}
    return {"prefetch": conf.get("oslo_messaging_rabbit", "rabbit_qos_prefetch_count"),
            "heartbeat": conf.get("oslo_messaging_rabbit", "heartbeat_timeout_threshold"),
            "name": f"{name}@{conf.get('DEFAULT', 'host')}"}


async def open_database(conf: config.Config) -> Database:
    """The cloud's database, refusing one whose schema is behind the code."""
    db = Database(conf.database_url)
    if not await migrate.is_current(db):
        await db.close()
        raise SchemaNotCurrent(
            f"the database at {without_password(conf.database_url)} is not at the newest schema; "
            "run `novalet manage db sync --config-file …` first")
    return db


class Worker:
    """A manager serving the bus; controller services also hold the database.
    Subclasses build `manager` (and open `db`) in `prepare`."""

    name = "worker"

    def __init__(self, conf: config.Config) -> None:
        self.conf = conf
        self.bus = make_bus(conf, self.name)
        self.db: Database | None = None
        self.manager: Any = None

    async def prepare(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        await self.prepare()
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.stop()
        await self.bus.close()
        if self.db is not None:
            await self.db.close()


class Conductor(Worker):
    name = "conductor"

    async def prepare(self) -> None:
        from novalet.conductor.manager import ConductorManager
        from novalet.network.api import NetworkAPI
        from novalet.network.rpcapi import NetworkRPC
        self.db = db = await open_database(self.conf)
        network = NetworkAPI(db, self.conf, refresh_hosts=NetworkRPC(self.bus).refresh)
        self.manager = ConductorManager(self.conf, db, self.bus, network)


class Scheduler(Worker):
    name = "scheduler"

    async def prepare(self) -> None:
        from novalet.scheduler.manager import SchedulerManager
        self.db = await open_database(self.conf)
        self.manager = SchedulerManager(self.conf, self.db, self.bus)


class Compute(Worker):
    """One hypervisor host: its virt driver. Its guests' taps are plugged by the
    network service of the same host, over the bus: this process builds no host
    network driver (two on one host would fight over its firewall)."""

    name = "compute"

    async def prepare(self) -> None:
        from novalet.compute.manager import ComputeManager
        from novalet.image.client import ImageClient
        from novalet.network import manager as network_manager
        from novalet.virt import loader as virt_loader
        images = ImageClient(self.conf)
        self.manager = ComputeManager(self.conf, self.bus, virt_loader.load(self.conf, images),
                                      images, network_manager.remote_vifs(self.conf, self.bus))


class Network(Worker):
    """One host's bridges, DHCP and firewall, as the database says they should be."""

    name = "network"

    async def prepare(self) -> None:
        from novalet.network import manager as network_manager
        self.manager = network_manager.NetworkManager(
            self.conf, self.bus, network_manager.load_driver(self.conf))


class Api:
    """The HTTP APIs (compute, identity, image) under uvicorn; bootstraps the cloud's
    identity, flavors and default network on its first start. With `[api] workers`
    above 1 it binds the port once and starts that many processes in all on it
    (service/api_workers.py)."""

    def __init__(self, conf: config.Config) -> None:
        self.conf = conf
        self.bus = make_bus(conf, "api")
        self.pool: Any = None

    async def start(self) -> None:
        import asyncio

        from novalet.api.app import build_app
        from novalet.network.rpcapi import NetworkRPC
        from novalet.service import api_workers, preflight
        from novalet.service.api import ApiServices, http_server
        from novalet.service.bootstrap import bootstrap
        workers = api_workers.count(self.conf)
        preflight.check_ports(self.conf, [preflight.api_listener(self.conf, "api")])
        # bound before the database and bootstrap, by us, not by uvicorn (which exits
        # the process when it cannot bind), and shared with the other API processes
        sock = api_workers.listen_socket(self.conf, "api")
        try:
            db = await open_database(self.conf)
        except BaseException:
            sock.close()
            raise
        self.services = ApiServices(self.conf, bus=self.bus, db=db)
        self.services.network.refresh_hosts = NetworkRPC(self.bus).refresh
        await bootstrap(self.services)
        self.server = http_server(build_app(self.services), self.conf)
        self.serving = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started and not self.serving.done():
            await asyncio.sleep(0.01)
        if not self.server.started:
            raise OSError("the API server did not start (its error is logged above)")
        if workers > 1:
            self.pool = api_workers.WorkerPool(self.conf, sock, workers - 1)
            try:
                await self.pool.start()
            except api_workers.ApiWorkerFailed:
                self.server.should_exit = True
                await self.serving
                raise

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.stop()
        self.server.should_exit = True
        await self.serving
        await self.bus.close()
        await self.services.db.close()


class ConsoleProxy:
    """One console proxy (console/proxies.py SPECS), validating tokens through the
    conductor over the bus; no database."""

    def __init__(self, conf: config.Config, name: str) -> None:
        from novalet.console.proxies import ConsoleProxies
        self.bus = make_bus(conf, name)
        self.proxies = ConsoleProxies(conf, self.bus, [name])

    async def start(self) -> None:
        self.proxies.check_public_ports()
        await self.proxies.start()
        for title, url in self.proxies.urls():
            LOG.info("the %s console proxy serves %s", title, url)

    async def stop(self) -> None:
        await self.proxies.stop()
        await self.bus.close()


def _proxy(name: str) -> Callable[[config.Config], Role]:
    return lambda conf: ConsoleProxy(conf, name)


ROLES: dict[str, Callable[[config.Config], Role]] = {
    "api": Api, "conductor": Conductor, "scheduler": Scheduler, "compute": Compute,
    "network": Network,
    **{name: _proxy(name) for name in (
        "novncproxy", "spicehtml5proxy", "serialproxy", "xvpvncproxy")}}
