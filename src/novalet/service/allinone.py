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
        self.conductor = ConductorManager(conf, db, bus)
        self.scheduler = SchedulerManager(conf, db, bus)
        images = ImageClient(conf, httpx.ASGITransport(app=self.app) if in_process_http
                             else None)
        self.compute = ComputeManager(conf, bus, virt_loader.load(conf, images), images)

    async def start(self) -> None:
        if not await migrate.is_current(self.services.db):
            await migrate.sync(self.services.db)
        await bootstrap(self.services)
        await self.conductor.start()
        await self.scheduler.start()
        await self.compute.start()

    async def stop(self) -> None:
        await self.compute.stop()
        await self.scheduler.stop()
        await self.conductor.stop()
        await self.services.bus.close()
        await self.services.db.close()
