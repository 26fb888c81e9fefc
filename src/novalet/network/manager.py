"""The network service of one host: keeps bridges, DHCP and firewall as the state says.

It reads its host's desired state through the conductor and hands it to the
host driver (network/linux), on start, when asked (`refresh`), and
periodically, so a host whose kernel state was lost (a reboot) is rebuilt
from the database. Concurrent refreshes collapse into one run.

It is also the only thing on a host that touches bridges, taps and the
firewall: the compute service of the same host asks it to plug and unplug its
guests' devices (`plug_vifs`/`unplug_vifs` on topic `network.<host>`, or
LocalVifs in one process), so every plug is done by the driver that holds the
host's applied state. A build's plug names its instance and compute host: once
the NICs are on their bridges and the applied state (so the firewall) holds
them, the service reports each one plugged, as Neutron does to Nova: a
`network-vif-plugged` external event (tag: the port id), cast to that host's
compute service, which waits for it before starting the guest.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.periodic import Periodic
from novalet.compute.rpcapi import ComputeAPI
from novalet.conductor.rpcapi import ConductorAPI
from novalet.network.host_settings import set_metadata_target
from novalet.network.model import HostNetworkState, Vif
from novalet.network.rpcapi import (
    DEVICE_KINDS,
    TOPIC,
    VERSION,
    HostNetworkAPI,
    NetworkStateRPC,
    NoVifs,
    PlugReport,
    VifPlugger,
    host_topic,
)
from novalet.rpc import identity, versions
from novalet.rpc.bus import Bus, CallInfo, NoSuchMethod, NotAuthorizedForHost, current_call

LOG = logging.getLogger(__name__)
BINARY = "nova-network"
_VIF_METHODS = ("plug_vifs", "unplug_vifs")


class HostNetDriver(Protocol):
    def claim_host(self) -> None: ...
    async def apply(self, state: HostNetworkState) -> None: ...
    async def plug(self, vif: Vif, device: str = "tap") -> None: ...
    async def unplug(self, vif: Vif, device: str = "tap") -> None: ...
    async def teardown(self) -> None: ...
    async def close(self) -> None: ...


class NoopNetDriver:
    """For clouds whose guests aren't real (the fake virt driver): changes nothing."""

    def __init__(self) -> None:
        self.applied: list[HostNetworkState] = []

    def claim_host(self) -> None:
        pass

    async def apply(self, state: HostNetworkState) -> None:
        self.applied.append(state)

    async def plug(self, vif: Vif, device: str = "tap") -> None:
        pass

    async def unplug(self, vif: Vif, device: str = "tap") -> None:
        pass

    async def teardown(self) -> None:
        pass

    async def close(self) -> None:
        pass


def host_driver_name(conf: config.Config) -> str:
    """[network] host_driver: linux, noop, or auto (linux unless guests are fake)."""
    name: str = conf.get("network", "host_driver")
    if name == "auto":
        name = "noop" if conf.get("DEFAULT", "compute_driver") == "fake" else "linux"
    return name


def load_driver(conf: config.Config) -> HostNetDriver:
    """The host driver of the network service (only the network service builds one:
    two drivers on one host would each think they own its firewall)."""
    if host_driver_name(conf) == "noop":
        return NoopNetDriver()
    from novalet.network.linux.driver import LinuxNetDriver
    return LinuxNetDriver(conf.state_path / "networking", owner=str(conf.state_path))


def remote_vifs(conf: config.Config, bus: Bus) -> VifPlugger:
    """How a compute host of a multi-process cloud plugs its guests: through its own
    host's network service, over the bus (nothing to plug for fake guests)."""
    if host_driver_name(conf) == "noop":
        return NoVifs()
    host = conf.get("DEFAULT", "host")
    return HostNetworkAPI(bus.as_user(identity.user_for_host(host)), host,
                          versions.Caps.from_conf(conf))


class NetworkManager:
    RPC_VERSION = VERSION

    def __init__(self, conf: config.Config, bus: Bus, driver: HostNetDriver) -> None:
        self.conf = conf
        self.host: str = conf.get("DEFAULT", "host")
        self.bus = bus
        self.driver = driver
        self.state_rpc = NetworkStateRPC(bus, versions.Caps.from_conf(conf))
        self._wanted = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.periodic = Periodic()
        self._stopping = False
        self.applied = asyncio.Event()  # set after each successful apply (tests wait on it)
        # a network that is not multi_host changes with guests on any host
        self._serves_shared = True
        self._state: HostNetworkState | None = None  # the one last applied

    async def start(self) -> None:
        # before anything touches the host: refuse if another cloud's network
        # service manages it (HostNetworkTaken names that cloud)
        self.driver.claim_host()
        await self.bus.serve(TOPIC, self)
        await self.apply_now()
        # plugs are served once the driver holds the host's state (see plug_vifs)
        await self.bus.serve(host_topic(self.host), self)
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
        await ConductorAPI(self.bus, self.conf).service_heartbeat(
            RequestContext.admin(), self.host, BINARY, TOPIC, self.RPC_VERSION)

    async def _resync(self) -> None:
        self._wanted.set()

    async def refresh(self, ctx: RequestContext, hosts: list[str]) -> None:
        if "*" in hosts or self.host in hosts or self._serves_shared:
            self._wanted.set()

    async def apply_now(self) -> None:
        # the conductor built it; where its guests find metadata is this host's say
        state = set_metadata_target(await self.state_rpc.host_state(self.host), self.conf)
        await self.driver.apply(state)
        self._state = state
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

    def _host_may_call(self, call: CallInfo) -> bool:
        """A compute host's bus user may have guests plugged and unplugged by its own
        host's network service only (rpc/bus refuses it everything else)."""
        return call.method in _VIF_METHODS and call.host == self.host

    async def _authorize(self, ctx: RequestContext, args: dict[str, Any]) -> None:
        """Run by the bus before every method: plugs are served on network.<host> only
        (which is served once the host's state is applied), and only for NICs of
        instances on this host as its state has them (read again once, as the state
        applied may predate a new guest or NIC)."""
        call = current_call()
        if call is None or call.method not in _VIF_METHODS:
            return
        if call.topic != host_topic(self.host):
            raise NoSuchMethod(topic=call.topic, method=call.method, version=call.version)
        report_host = args.get("report_host")
        if call.host is not None and report_host not in (None, call.host):
            # a host has its own plugs reported to itself, never another host
            raise NotAuthorizedForHost(sender=call.sender or "(none)", host=call.host,
                                       method=call.method,
                                       target=f"plug reports to host {report_host}")
        vifs = [Vif.from_dict(v) for v in args.get("vifs") or []]
        if not all(self._is_on_host(v) for v in vifs):
            await self.apply_now()
        strays = [v.id for v in vifs if not self._is_on_host(v)]
        if strays:
            LOG.warning("Refused %s of NICs %s from bus user %s: not of an instance on %s",
                        call.method, ", ".join(strays), call.sender, self.host)
            raise NotAuthorizedForHost(
                sender=call.sender or "(none)", host=call.host or "(none)",
                method=call.method,
                target=f"NICs {', '.join(strays)} (no instance on host {self.host} has them)")

    def _is_on_host(self, vif: Vif) -> bool:
        """Whether the applied state has this NIC, as sent, on one of its instances."""
        if self._state is None:
            return False
        return any(_vif_key(vif) == _vif_key(own) for inst in self._state.instances
                   for own in inst.vifs)

    # The VIF seam: compute, on the same host, has guests' devices plugged before they
    # start and unplugged after (a bus call to network.<host>, or LocalVifs).
    async def plug_vifs(self, ctx: RequestContext, vifs: list[dict[str, Any]],
                        device: str = "tap", instance_uuid: str | None = None,
                        report_host: str | None = None) -> None:
        """`vifs`: Vif models (1.1) or their untagged fields (1.0). With
        `instance_uuid` and `report_host` (1.2), each NIC is reported plugged to
        that host's compute service once plugged and filtered (see the module)."""
        _check_device(device)
        nics = [Vif.from_dict(vif) for vif in vifs]  # a malformed one refuses them all
        if not self.applied.is_set():
            # never plug (and so render the firewall) without the host's state; an
            # apply that fails in part still leaves the driver holding the state
            try:
                await self.apply_now()
            except Exception:
                LOG.exception("Applying the network state before a plug failed")
        for nic in nics:
            await self.driver.plug(nic, device)
        if instance_uuid is not None and report_host is not None:
            await self._report_plugged(ctx, nics, PlugReport(instance_uuid, report_host))

    async def _report_plugged(self, ctx: RequestContext, nics: list[Vif],
                              report: PlugReport) -> None:
        """Cast network-vif-plugged for each NIC to the compute service waiting for
        it. A NIC of an instance on this host counts as plugged once the applied
        state holds it (its firewall rules are in, not the quarantine a tap the
        state lacks gets): the state is read again when it lacks one (a plug over
        the bus did that already, see _authorize). One it still lacks after is
        reported failed. (An in-process compute host of another name, the fake
        driver's extra hosts, has no firewall here: its NICs are plugged as is.)"""
        status = dict.fromkeys((nic.id for nic in nics), "completed")
        if report.host == self.host and not all(self._is_on_host(n) for n in nics):
            try:
                await self.apply_now()
            except Exception:
                LOG.exception("Applying the network state after a plug failed")
            for nic in nics:
                if not self._is_on_host(nic):
                    LOG.warning("NIC %s of %s is plugged but not in this host's state: "
                                "reporting it failed", nic.id, report.instance_uuid)
                    status[nic.id] = "failed"
        events = [{"name": "network-vif-plugged", "server_uuid": report.instance_uuid,
                   "tag": nic.id, "status": status[nic.id]} for nic in nics]
        try:
            await ComputeAPI(self.bus, self.conf).external_instance_event(
                ctx, report.host, events)
        except Exception:  # the compute's wait times out and says which port
            LOG.exception("Reporting NICs of %s plugged to %s failed",
                          report.instance_uuid, report.host)

    async def unplug_vifs(self, ctx: RequestContext, vifs: list[dict[str, Any]],
                          device: str = "tap") -> None:
        """`vifs`: as plug_vifs takes them."""
        _check_device(device)
        for nic in [Vif.from_dict(vif) for vif in vifs]:
            await self.driver.unplug(nic, device)


def _vif_key(vif: Vif) -> tuple[Any, ...]:
    """What a plug acts on: the device (named from the id), its MAC, and where it goes."""
    return (vif.id, vif.address, vif.network_id, vif.bridge, vif.fixed_ip, vif.vlan)


def _check_device(device: str) -> None:
    if device not in DEVICE_KINDS:
        raise exceptions.Invalid(reason=f"this network service plugs no {device!r} devices "
                                 f"(it knows {', '.join(DEVICE_KINDS)})")


class LocalVifs:
    """The VIF seam in one process (`novalet up`): the same calls as over the bus,
    made on the network manager itself."""

    reports_plugged = True

    def __init__(self, manager: NetworkManager) -> None:
        self.manager = manager

    async def plug(self, vifs: list[Vif], device: str = "tap",
                   report: PlugReport | None = None) -> None:
        if vifs:
            await self.manager.plug_vifs(
                RequestContext.admin(), [v.to_dict() for v in vifs], device,
                report.instance_uuid if report else None, report.host if report else None)

    async def unplug(self, vifs: list[Vif], device: str = "tap") -> None:
        if vifs:
            await self.manager.unplug_vifs(RequestContext.admin(),
                                           [v.to_dict() for v in vifs], device)
