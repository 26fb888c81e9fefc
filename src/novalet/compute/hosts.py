"""Hosts as the os-hosts API (deprecated, gone from 2.43) shows and changes them.

A host is listed once per enabled service on it (API services aside), with the
service's topic and zone. Its resources are its first compute node's totals and
usage, the sums over its instances, and those sums per project.

Changing a host: Nova hands status, maintenance mode and power actions to the
virt driver, and its production drivers have none of them (501). Here `status`
does what it means, enabling or disabling the host's compute service (what the
scheduler reads, as os-services does); maintenance mode (evacuating the host)
and powering the hypervisor machine are done by no Novalet driver: 501, after
the host's existence is checked (404) and before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from novalet import config, exceptions
from novalet.compute.host_not_found import ComputeHostNotFound
from novalet.compute.hypervisors import HypervisorAPI
from novalet.compute.services import COMPUTE_BINARY, DISABLED, ENABLED, ServiceAPI
from novalet.db import host_instances
from novalet.db import services as db_services
from novalet.db.engine import Database
from novalet.rpc.bus import Bus


class HostNotFound(exceptions.NotFound):
    msg_fmt = "Host %(host)s could not be found."


class HostActionNotSupported(exceptions.NovaletError):
    """Nova's answer (raise_feature_not_supported) for a driver without the action."""

    msg_fmt = ("The requested functionality is not supported: %(action)s of host "
               "%(host)s (no Novalet virt driver %(does)s).")
    code = 501


_UNSUPPORTED = {
    "maintenance_mode": "evacuates a host for maintenance; disable its compute service "
                        "and migrate its servers instead",
    "reboot": "powers its hypervisor machine", "shutdown": "powers its hypervisor machine",
    "startup": "powers its hypervisor machine"}


@dataclass(frozen=True)
class HostEntry:
    host_name: str
    service: str  # the service's topic: compute, conductor, scheduler...
    zone: str


@dataclass(frozen=True)
class HostResource:
    host: str
    project: str  # a project id, or (total), (used_now), (used_max)
    cpu: int
    memory_mb: int
    disk_gb: int


class HostAPI:
    def __init__(self, db: Database, bus: Bus, conf: config.Config) -> None:
        self.db = db
        self.services = ServiceAPI(db, conf)
        self.hypervisors = HypervisorAPI(db, bus, conf)

    async def list_hosts(self, zone: str | None = None) -> list[HostEntry]:
        """One entry per enabled service (as Nova, disabled ones are not listed);
        `zone` keeps those of that availability zone."""
        return [HostEntry(s.record.host, s.record.binary.removeprefix("nova-"), s.zone)
                for s in await self.services.list_services()
                if not s.record.disabled and (not zone or s.zone == zone)]

    async def resources(self, host: str) -> list[HostResource]:
        """(total) and (used_now) of the host's first compute node, (used_max) summed
        over its instances, then one line per project with instances there."""
        nodes = [h for h in await self.hypervisors.list_hypervisors() if h.node.host == host]
        if not nodes:
            raise ComputeHostNotFound(host=host)
        node = nodes[0]
        sizes = await host_instances.sizes_on_host(self.db, host)
        lines = [HostResource(host, "(total)", node.vcpus, node.memory_mb, node.local_gb),
                 HostResource(host, "(used_now)", node.vcpus_used, node.memory_mb_used,
                              node.local_gb_used),
                 _summed(host, "(used_max)", sizes)]
        for project in dict.fromkeys(s.project_id for s in sizes):
            lines.append(_summed(host, project,
                                 [s for s in sizes if s.project_id == project]))
        return lines

    async def set_enabled(self, host: str, enabled: bool) -> str:
        """Enable or disable the host's compute service: "enabled" or "disabled"."""
        await self.check_exists(host)
        state = await self.services.update_by_host(
            host, COMPUTE_BINARY, status=ENABLED if enabled else DISABLED)
        return DISABLED if state.record.disabled else ENABLED

    async def check_exists(self, host: str) -> None:
        """HostNotFound (404) unless a compute service runs on `host`."""
        try:
            await db_services.find_service(self.db, host, COMPUTE_BINARY)
        except db_services.HostBinaryNotFound:
            raise HostNotFound(host=host) from None

    async def refuse(self, host: str, action: str) -> NoReturn:
        """What maintenance mode and the power actions get: 404 for an unknown host,
        else 501."""
        await self.check_exists(host)
        raise HostActionNotSupported(action=action, host=host, does=_UNSUPPORTED[action])


def _summed(host: str, project: str, sizes: list[host_instances.InstanceSize]
            ) -> HostResource:
    return HostResource(host, project, sum(s.vcpus for s in sizes),
                        sum(s.memory_mb for s in sizes), sum(s.disk_gb for s in sizes))
