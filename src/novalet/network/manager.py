"""The network service of one host: keeps bridges, DHCP and firewall as the state says.

It reads its host's desired state through the conductor and hands it to the
host driver (network/linux), on start, when asked (`refresh`), and
periodically, so a host whose kernel state was lost (a reboot) is rebuilt
from the database. Concurrent refreshes collapse into one run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from novalet import config
from novalet.common.context import RequestContext
from novalet.common.periodic import Periodic
from novalet.conductor.rpcapi import ConductorAPI
from novalet.network.model import HostNetworkState, Vif
from novalet.network.rpcapi import TOPIC, NetworkStateRPC
from novalet.rpc.bus import Bus

LOG = logging.getLogger(__name__)
BINARY = "nova-network"


class HostNetDriver(Protocol):
    async def apply(self, state: HostNetworkState) -> None: ...
    async def plug(self, vif: Vif) -> None: ...
    async def unplug(self, vif: Vif) -> None: ...
    async def teardown(self) -> None: ...
    async def close(self) -> None: ...


class NoopNetDriver:
    """For clouds whose guests aren't real (the fake virt driver): changes nothing."""

    def __init__(self) -> None:
        self.applied: list[HostNetworkState] = []

    async def apply(self, state: HostNetworkState) -> None:
        self.applied.append(state)

    async def plug(self, vif: Vif) -> None:
        pass

    async def unplug(self, vif: Vif) -> None:
        pass

    async def teardown(self) -> None:
        pass

    async def close(self) -> None:
        pass


def load_driver(conf: config.Config) -> HostNetDriver:
    """[network] host_driver: linux, noop, or auto (linux unless guests are fake)."""
    name = conf.get("network", "host_driver")
    if name == "auto":
        name = "noop" if conf.get("DEFAULT", "compute_driver") == "fake" else "linux"
    if name == "noop":
        return NoopNetDriver()
    from novalet.network.linux.driver import LinuxNetDriver
    return LinuxNetDriver(conf.state_path / "networking")


class NetworkManager:
    RPC_VERSION = "1.0"

    def __init__(self, conf: config.Config, bus: Bus, driver: HostNetDriver) -> None:
        self.conf = conf
        self.host: str = conf.get("DEFAULT", "host")
        self.bus = bus
        self.driver = driver
        self.state_rpc = NetworkStateRPC(bus)
        self._wanted = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.periodic = Periodic()
        self._stopping = False
        self.applied = asyncio.Event()  # set after each successful apply (tests wait on it)
        # a network that is not multi_host changes with guests on any host
        self._serves_shared = True

    async def start(self) -> None:
        await self.bus.serve(TOPIC, self)
        await self.apply_now()
        await self._heartbeat()
        self._worker = asyncio.create_task(self._work())
        self.periodic.every(self.conf.get("network", "resync_interval"), "network resync",
                            self._resync)
        self.periodic.every(self.conf.get("DEFAULT", "report_interval"), "heartbeat",
                            self._heartbeat)

    async def stop(self) -> None:
        await self.periodic.stop()
        if self._worker:
            self._stopping = True
            self._wanted.set()  # ends the loop even if the cancel below is swallowed
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self.driver.close()

    async def _heartbeat(self) -> None:
        await ConductorAPI(self.bus).service_heartbeat(RequestContext.admin(), self.host,
                                                       BINARY, TOPIC)

    async def _resync(self) -> None:
        self._wanted.set()

    async def refresh(self, ctx: RequestContext, hosts: list[str]) -> None:
        if "*" in hosts or self.host in hosts or self._serves_shared:
            self._wanted.set()

    async def apply_now(self) -> None:
        state = await self.state_rpc.host_state(self.host)
        await self.driver.apply(state)
        self._serves_shared = any(not n.multi_host for n in state.networks)
        self.applied.set()
        LOG.debug("Applied networking: %d networks, %d instances, %d floating IPs",
                  len(state.networks), len(state.instances), len(state.floating))

    async def _work(self) -> None:
        while True:
            await self._wanted.wait()
            if self._stopping:
                return
            self._wanted.clear()
            try:
                await self.apply_now()
            except Exception:  # the next refresh or the periodic run tries again
                LOG.exception("Applying the network state failed")

    # Compute, on the same host, plugs guests in before they start.
    async def plug_vifs(self, vifs: list[dict[str, Any]]) -> None:
        for vif in vifs:
            await self.driver.plug(Vif.from_dict(vif))

    async def unplug_vifs(self, vifs: list[dict[str, Any]]) -> None:
        for vif in vifs:
            await self.driver.unplug(Vif.from_dict(vif))
