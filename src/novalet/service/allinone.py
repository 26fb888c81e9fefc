"""`novalet up`: api, conductor, scheduler and one compute host in one process.

With the fake driver, `[fake] extra_hosts` adds more compute hosts to the same
process (fake-host-2, fake-host-3, ...): each is a ComputeManager with its own
FakeDriver, service record, topic and resource provider on the shared bus.
They skip the power-state sync and image cache jobs and heartbeat only as often
as `service_down_time` needs, so a thousand of them cost little but memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import httpx

from novalet import config
from novalet.api.app import build_app
from novalet.compute.manager import ComputeManager
from novalet.conductor.manager import ConductorManager
from novalet.console.proxies import ConsoleProxies
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
        self.network = network_manager.NetworkManager(conf, bus,
                                                      network_manager.load_driver(conf))
        # the VIF seam in-process: compute plugs through the one network service
        vifs = network_manager.LocalVifs(self.network)
        self.compute = ComputeManager(conf, bus, virt_loader.load(conf, images), images, vifs)
        self.extra_computes = [
            ComputeManager(host_conf, bus, virt_loader.load(host_conf, images), images, vifs)
            for host_conf in extra_host_confs(conf)]
        self.metadata = MetadataServer(conf, CloudLookup(db, self.services.network))
        self.console_proxies = ConsoleProxies(conf, bus)

    async def start(self) -> None:
        # first of all: refuse (HostNetworkTaken) if another cloud runs this host's
        # networking, before anything of this one starts
        self.network.driver.claim_host()
        if not await migrate.is_current(self.services.db):
            await migrate.sync(self.services.db)
        await bootstrap(self.services)
        await self.conductor.start()
        await self.scheduler.start()
        await self.network.start()
        await self.compute.start()
        await start_in_batches(self.extra_computes)
        if self.conf.get("metadata", "port") > 0:  # 0: no metadata service here
            await self.metadata.start()
        await self.console_proxies.start()  # sets the ports console URLs name
        self.conductor.lost_builds.serving()  # builds a kill -9 took the casts of

    async def stop(self) -> None:
        await self.console_proxies.stop()
        await self.metadata.stop()
        await asyncio.gather(*(c.stop() for c in self.extra_computes))
        await self.compute.stop()
        await self.network.stop()
        await self.scheduler.stop()
        await self.conductor.stop()
        await self.services.bus.close()
        await self.services.db.close()


def extra_host_confs(conf: config.Config) -> list[config.Config]:
    """One configuration per extra fake compute host ([fake] extra_hosts of them)."""
    count = conf.get("fake", "extra_hosts")
    if count <= 0:
        return []
    if conf.get("DEFAULT", "compute_driver") != "fake":
        raise config.ConfigError("[fake] extra_hosts needs compute_driver = fake")
    heartbeat = max(conf.get("DEFAULT", "report_interval"),
                    conf.get("DEFAULT", "service_down_time") / 2)
    confs = []
    for number in range(2, count + 2):
        host_conf = dataclasses.replace(conf, values=dict(conf.values))
        host_conf.set("DEFAULT", "host", f"fake-host-{number}")
        host_conf.set("DEFAULT", "report_interval", heartbeat)
        host_conf.set("DEFAULT", "sync_power_state_interval", 0.0)
        host_conf.set("DEFAULT", "image_cache_manager_interval", 0.0)
        confs.append(host_conf)
    return confs


async def start_in_batches(computes: list[ComputeManager], batch: int = 50) -> None:
    """Start many compute hosts, `batch` at a time (their start-up calls share one
    conductor and database)."""
    for first in range(0, len(computes), batch):
        await asyncio.gather(*(c.start() for c in computes[first:first + batch]))
