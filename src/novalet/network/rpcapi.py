"""Client of the network service: ask hosts to bring their networking up to date."""

from __future__ import annotations

from novalet.common.context import RequestContext
from novalet.network.model import HostNetworkState
from novalet.rpc.bus import Bus

TOPIC = "network"
VERSION = "1.0"


class NetworkRPC:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def refresh(self, hosts: set[str]) -> None:
        """Tell the network services of `hosts` (every one, when `hosts` holds '*')
        to apply the current state; each reads it itself."""
        await self.bus.fanout(RequestContext.admin(), TOPIC, "refresh",
                              {"hosts": sorted(hosts)}, version=VERSION)


class NetworkStateRPC:
    """How a network service reads its host's desired state (through the conductor)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def host_state(self, host: str) -> HostNetworkState:
        data = await self.bus.call(RequestContext.admin(), "conductor", "network_host_state",
                                   {"host": host}, version=VERSION)
        return HostNetworkState.from_dict(data)
