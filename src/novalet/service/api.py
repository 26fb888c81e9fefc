"""The domain services the API front-ends call, built from one configuration."""

from __future__ import annotations

from typing import Any

import uvicorn

from novalet import config
from novalet.common.http_server import with_timeouts
from novalet.compute.api import ComputeAPI
from novalet.compute.consoles import ConsoleService
from novalet.compute.flavors import FlavorService
from novalet.compute.keypairs import KeypairService
from novalet.compute.quotas import QuotaEngine
from novalet.compute.server_groups import ServerGroupService
from novalet.db.cache_generations import Generation, shared
from novalet.db.engine import Database
from novalet.identity.api import IdentityService
from novalet.identity.tokens import TokenProvider
from novalet.image.api import ImageService
from novalet.network.api import NetworkAPI
from novalet.network.floating_ips import FloatingIPService
from novalet.network.routers import RouterService
from novalet.network.ip_availability import IpAvailabilityService
from novalet.network.networks import NetworkService
from novalet.network.neutron_security_groups import NeutronSecurityGroups
from novalet.network.quotas import NetworkQuotas
from novalet.network import tag_kinds
from novalet.network.subnets import SubnetService
from novalet.network.tags import TagService
from novalet.network.ports import PortService
from novalet.rpc import bus as rpc_bus


class ApiServices:
    """What handlers reach as `req.app`: config, database, bus and domain services."""

    def __init__(self, conf: config.Config, bus: rpc_bus.Bus | None = None,
                 db: Database | None = None) -> None:
        self.conf = conf
        self.db = db or Database(conf.database_url)
        self.bus = bus or rpc_bus.from_url(conf.get("DEFAULT", "transport_url"),
                                           conf.get("DEFAULT", "rpc_response_timeout"),
                                           rpc_bus.Senders.from_conf(conf))
        self.tokens = TokenProvider(conf.state_path / "fernet-keys",
                                    conf.get("identity", "token_expiration"))
        self.identity = IdentityService(self.db, self.tokens, conf)
        self.images = ImageService(self.db, conf.state_path / "images", conf)
        # Shared caches follow writes made through other API processes (workers, hosts).
        self.flavors = FlavorService(self.db, Generation(
            self.db, "flavors", shared(conf.get("DEFAULT", "transport_url"))))
        self.quotas = QuotaEngine(self.db, conf)
        self.keypairs = KeypairService(self.db, self.quotas)
        self.server_groups = ServerGroupService(self.db, self.quotas)
        self.network = NetworkAPI(self.db, conf)
        self.networks = NetworkService(self.network)  # the network API's networks
        # Hosts refresh through the network domain's refresher, set after this is built.
        self.subnets = SubnetService(self.db, conf, self._refresh_network_hosts)
        self.neutron_security_groups = NeutronSecurityGroups(self.network)
        self.ports = PortService(self.network)  # and its ports
        self.floatingips = FloatingIPService(self.network)  # and its floating IPs
        self.routers = RouterService(self.network)  # and its routers
        self.network_quotas = NetworkQuotas(self.db, self.quotas)  # and its quotas
        self.ip_availability = IpAvailabilityService(self.db)
        self.tags = TagService(self.db, tag_kinds.loaders(
            self.networks, self.subnets, self.ports, self.neutron_security_groups,
            self.floatingips, self.routers))
        self.compute = ComputeAPI(self.db, self.bus, conf, images=self.images,
                                  flavors=self.flavors, keypairs=self.keypairs,
                                  network=self.network, quotas=self.quotas)
        self.auto_topology = self.compute.auto_topology  # get-me-a-network, both faces
        self.consoles = ConsoleService(conf, self.db, self.bus)

    async def _refresh_network_hosts(self, hosts: set[str]) -> None:
        if self.network.refresh_hosts is not None:
            await self.network.refresh_hosts(hosts)


def http_server(app: Any, conf: config.Config) -> uvicorn.Server:
    """The API's HTTP server (uvicorn, on the running loop) at [api] listen:port,
    with header and body timeouts (common/http_server.py) besides keep-alive's."""
    idle = conf.get("wsgi", "client_socket_timeout")
    protocol = with_timeouts(conf.get("wsgi", "client_header_timeout"), idle)
    return uvicorn.Server(uvicorn.Config(
        app, host=conf.get("api", "listen"), port=conf.get("api", "port"), loop="none",
        http=protocol, lifespan="off", log_level="warning", access_log=False,
        server_header=False, date_header=False, timeout_keep_alive=max(1, int(idle))))
