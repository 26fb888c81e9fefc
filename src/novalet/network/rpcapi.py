"""Clients of the network service: ask hosts to bring their networking up to date,
and (the VIF seam) ask one host's network service to plug or unplug guests' devices.

Versions of the network RPC API (network/manager.py serves the newest and every
older minor):

- 1.0: refresh, plug_vifs and unplug_vifs, vifs as untyped dicts.
- 1.1: plug_vifs' and unplug_vifs' vifs are Vif models (network/model.py, tagged
  with their `_version`).
- 1.2: plug_vifs takes `instance_uuid` and `report_host`: once the NICs are
  plugged and the firewall holds them, the service casts a `network-vif-plugged`
  event per NIC (tag: the port id) to the compute service of `report_host`
  (compute RPC external_instance_event), Nova's plug wait. A compute host whose
  network service is capped below 1.2 does not wait (nothing would report).

plug_vifs and unplug_vifs are sent at 1.1, or at 1.0 (vifs backported to the
fields Vif 1.0 has) under `[upgrade_levels] network = 1.0`, for a network
service of the previous release on the compute host's own host. The host state
a network service reads comes from the conductor (`network_host_state`,
conductor RPC 1.6; 1.0 under `[upgrade_levels] conductor` below 1.6; a
HostNetworkState model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.network.model import HostNetworkState, Vif
from novalet.rpc import versions
from novalet.rpc.bus import Bus, MessagingTimeout

TOPIC = "network"
VERSION = "1.2"
# The Vif version each network RPC version carries.
VIF_VERSIONS = {"1.0": "1.0", "1.1": "1.0", "1.2": "1.0"}

# What host device a guest NIC uses, as its virt driver needs it (the `device`
# argument of plug/unplug; docs/architecture.md, "The VIF seam"); either way the
# device is named `vif.tap`, which the firewall matches:
# - "tap": the network service makes a persistent tap (QEMU opens it with
#   `-netdev tap,ifname=…`), or adopts a tun/tap of that name made before.
# - "driver": the virt driver makes the device (libvirt's tap with that target
#   name, the host end of a container driver's veth pair); the network service
#   makes the bridge, puts the device on it once it exists and filters it, and
#   never deletes it.
DEVICE_KINDS = ("tap", "driver")


def host_topic(host: str) -> str:
    """The topic only `host`'s network service serves (plug and unplug)."""
    return f"{TOPIC}.{host}"


@dataclass(frozen=True)
class PlugReport:
    """Whom a plug is reported to: network-vif-plugged for each NIC of instance
    `instance_uuid`, cast to the compute service of `host`."""

    instance_uuid: str
    host: str


class VifPlugger(Protocol):
    """How a compute host gets its guests' NICs plugged into its host's networks: it
    never touches bridges or the firewall itself (the network service owns them).
    With `report`, each NIC plugged is reported as a network-vif-plugged event
    (only when `reports_plugged`: else nothing would come)."""

    @property
    def reports_plugged(self) -> bool: ...
    async def plug(self, vifs: list[Vif], device: str = "tap",
                   report: PlugReport | None = None) -> None: ...
    async def unplug(self, vifs: list[Vif], device: str = "tap") -> None: ...


class NetworkServiceUnavailable(exceptions.Unavailable):
    msg_fmt = ("The network service of host %(host)s did not answer %(method)s (is "
               "`novalet network` running there? every compute host with real guests "
               "needs one): %(reason)s")


class HostNetworkAPI:
    """The network service of one host, over the bus (a compute host's own host)."""

    def __init__(self, bus: Bus, host: str, caps: versions.Caps | None = None) -> None:
        self.bus = bus
        self.host = host
        self.caps = caps or versions.Caps()  # [upgrade_levels] network

    @property
    def reports_plugged(self) -> bool:
        """Whether the host's network service reports plugs (network RPC 1.2)."""
        return self.caps.version("network", "1.2") == "1.2"

    async def plug(self, vifs: list[Vif], device: str = "tap",
                   report: PlugReport | None = None) -> None:
        extra = {}
        if report is not None and self.reports_plugged:
            extra = {"instance_uuid": report.instance_uuid, "report_host": report.host}
        await self._call("plug_vifs", vifs, device, extra)

    async def unplug(self, vifs: list[Vif], device: str = "tap") -> None:
        await self._call("unplug_vifs", vifs, device)

    async def _call(self, method: str, vifs: list[Vif], device: str,
                    extra: dict[str, str] | None = None) -> None:
        if not vifs:
            return
        # 1.1 unless the report needs 1.2: a plug without one stays what it was
        version = self.caps.version("network", "1.2" if extra else "1.1")
        try:
            await self.bus.call(RequestContext.admin(), host_topic(self.host), method,
                                {"vifs": [v.to_dict(VIF_VERSIONS[version]) for v in vifs],
                                 "device": device, **(extra or {})}, version=version)
        except MessagingTimeout as exc:
            raise NetworkServiceUnavailable(host=self.host, method=method,
                                            reason=exc.message) from exc


class NoVifs:
    """For hosts whose guests are not real (the fake driver): nothing to plug, and
    no network service to report plugs."""

    reports_plugged = False

    async def plug(self, vifs: list[Vif], device: str = "tap",
                   report: PlugReport | None = None) -> None:
        pass

    async def unplug(self, vifs: list[Vif], device: str = "tap") -> None:
        pass


class NetworkRPC:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def refresh(self, hosts: set[str]) -> None:
        """Tell the network services of `hosts` (every one, when `hosts` holds '*')
        to apply the current state; each reads it itself."""
        await self.bus.fanout(RequestContext.admin(), TOPIC, "refresh",
                              {"hosts": sorted(hosts)}, version="1.0")


class NetworkStateRPC:
    """How a network service reads its host's desired state (through the conductor:
    a conductor RPC method, of the conductor's versions, not the network's)."""

    def __init__(self, bus: Bus, caps: versions.Caps | None = None) -> None:
        self.bus = bus
        self.caps = caps or versions.Caps()  # [upgrade_levels] conductor

    async def host_state(self, host: str) -> HostNetworkState:
        """The state as a HostNetworkState model, asked at conductor RPC 1.6 (egress
        rules), or at 1.0 while `[upgrade_levels] conductor` is below 1.6 (conductors
        not all upgraded yet). What a conductor answers a 1.0 call, or a conductor of
        an older release sends (untagged), is read with egress unfiltered."""
        version = self.caps.version("conductor", "1.6")
        data = await self.bus.call(RequestContext.admin(), "conductor", "network_host_state",
                                   {"host": host}, version=version)
        return HostNetworkState.from_dict(data)
