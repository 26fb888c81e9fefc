"""`novalet up`: api, conductor, scheduler and one compute host in one process."""

from __future__ import annotations

import logging

import httpx

from novalet import config
from novalet.api.app import build_app
from novalet.compute.manager import ComputeManager
from novalet.conductor.manager import ConductorManager
from novalet.db import migrate
from novalet.image.client import ImageClient
from novalet.metadata.cloud_lookup import CloudLookup
from novalet.metadata.service import MetadataServer
from novalet.network import manager as network_manager
from novalet.network.rpcapi import NetworkRPC
from novalet.scheduler.manager import SchedulerManager
from novalet.service.api import ApiServices
from novalet.service.bootstrap import bootstrap
from novalet.virt import loader as virt_loader

LOG = logging.getLogger(__name__)


class AllInOne:
    """Every service of a cloud over one in-process bus and one database."""

    def __init__(self, conf: config.Config, in_process_http: bool = False) -> None:
        """in_process_http: compute reaches the APIs through the app itself, no socket
        (for tests that run the cloud without a server)."""
        self.conf = conf
        conf.state_path.mkdir(parents=True, exist_ok=True)
        self.services = ApiServices(conf)
        self.app = build_app(self.services)
        bus, db = self.services.bus, self.services.db
        self.services.network.refresh_hosts = NetworkRPC(bus).refresh
        self.conductor = ConductorManager(conf, db, bus, self.services.network)
        self.scheduler = SchedulerManager(conf, db, bus)
        images = ImageClient(conf, httpx.ASGITransport(app=self.app) if in_process_http
                             else None)
        net = network_manager.load_driver(conf)
        self.network = network_manager.NetworkManager(conf, bus, net)
        self.compute = ComputeManager(conf, bus, virt_loader.load(conf, images), images, net)
        self.metadata = MetadataServer(conf, CloudLookup(db, self.services.network))

    async def start(self) -> None:
        if not await migrate.is_current(self.services.db):
            await migrate.sync(self.services.db)
        await bootstrap(self.services)
        await self.conductor.start()
        await self.scheduler.start()
        await self.network.start()
        await self.compute.start()
        if self.conf.get("metadata", "port") > 0:  # 0: no metadata service here
            await self.metadata.start()

    async def stop(self) -> None:
        await self.metadata.stop()
        await self.compute.stop()
        await self.network.stop()
        await self.scheduler.stop()
        await self.conductor.stop()
        await self.services.bus.close()
        await self.services.db.close()
