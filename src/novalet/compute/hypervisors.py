"""Hypervisors as admins see them (os-hypervisors): each compute node with its
placement inventory and usage, its service's state, and its host's uptime."""

from __future__ import annotations

from dataclasses import dataclass

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.db import compute_nodes
from novalet.db import services as db_services
from novalet.db.compute_nodes import NodeInstance, NodeUsage
from novalet.db.engine import Database
from novalet.db.models import ComputeNode, Service
from novalet.rpc.bus import Bus

COMPUTE_BINARY = db_services.COMPUTE_BINARY


class HypervisorNotFound(exceptions.NotFound):
    msg_fmt = "Hypervisor with ID %(id)s could not be found."


class HypervisorPatternNotFound(exceptions.NotFound):
    msg_fmt = "No hypervisor matching '%(pattern)s' could be found."


class HypervisorMarkerNotFound(exceptions.Invalid):
    msg_fmt = "marker [%(marker)s] not found"


class ComputeServiceUnavailable(exceptions.Invalid):
    msg_fmt = "Compute service of %(host)s is unavailable at this time."


@dataclass(frozen=True)
class Hypervisor:
    """A compute node, its nova-compute service, and what placement says of it."""

    node: ComputeNode
    service: Service
    up: bool
    usage: NodeUsage
    instances: list[NodeInstance]

    def _total(self, rc: str) -> int:
        return self.usage.total.get(rc, 0)

    def _used(self, rc: str) -> int:
        # What the host keeps for itself counts as used, as in Nova's figures.
        return self.usage.used.get(rc, 0) + self.usage.reserved.get(rc, 0)

    @property
    def vcpus(self) -> int:
        return self._total("VCPU")

    @property
    def vcpus_used(self) -> int:
        return self.usage.used.get("VCPU", 0)

    @property
    def memory_mb(self) -> int:
        return self._total("MEMORY_MB")

    @property
    def memory_mb_used(self) -> int:
        return self._used("MEMORY_MB")

    @property
    def local_gb(self) -> int:
        return self._total("DISK_GB")

    @property
    def local_gb_used(self) -> int:
        return self._used("DISK_GB")

    @property
    def free_ram_mb(self) -> int:
        return self.memory_mb - self.memory_mb_used

    @property
    def free_disk_gb(self) -> int:
        return self.local_gb - self.local_gb_used

    @property
    def running_vms(self) -> int:
        return len(self.instances)

    @property
    def current_workload(self) -> int:
        """Instances with an operation under way (a task_state set)."""
        return sum(1 for i in self.instances if i.task_state is not None)

    @property
    def disk_available_least(self) -> int:
        # Images are copied in full (no thin provisioning to discount): the free disk.
        return self.free_disk_gb

    @property
    def enabled(self) -> bool:
        return not self.service.disabled


class HypervisorAPI:
    """Reads compute nodes, services and placement; asks a host for its uptime."""

    def __init__(self, db: Database, bus: Bus, conf: config.Config) -> None:
        self.db = db
        self.conf = conf
        self.compute = compute_rpcapi.ComputeAPI(bus, conf)

    async def list_hypervisors(self, *, hostname_pattern: str | None = None,
                               marker: int | str | None = None, limit: int | None = None) -> list[Hypervisor]:
        """Hypervisors by id; a marker is the id (int) or uuid (str) of the last one
        seen. Nodes whose compute service was deleted are not listed."""
        after_id = None
        if marker is not None:
            marked = await compute_nodes.get_node(self.db, marker)
            if marked is None:
                raise HypervisorMarkerNotFound(marker=marker)
            after_id = marked.id
        nodes = await compute_nodes.list_nodes(self.db, hostname_pattern=hostname_pattern,
                                               after_id=after_id, limit=limit)
        return await self._hypervisors(nodes)

    async def search(self, pattern: str) -> list[Hypervisor]:
        """Hypervisors whose hostname contains `pattern`; a 404 when none does."""
        found = await self.list_hypervisors(hostname_pattern=pattern)
        if not found:
            raise HypervisorPatternNotFound(pattern=pattern)
        return found

    async def get(self, key: int | str) -> Hypervisor:
        node = await compute_nodes.get_node(self.db, key)
        found = await self._hypervisors([node] if node else [])
        if not found:
            raise HypervisorNotFound(id=key)
        return found[0]

    async def statistics(self) -> dict[str, int]:
        """The sums over every hypervisor, as os-hypervisors/statistics shows them."""
        hypervisors = await self.list_hypervisors()
        fields = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb",
                  "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload",
                  "running_vms", "disk_available_least")
        stats = {name: sum(getattr(h, name) for h in hypervisors) for name in fields}
        stats["count"] = len(hypervisors)
        return stats

    async def uptime(self, ctx: RequestContext, hypervisor: Hypervisor) -> str:
        """The host's `uptime` line, asked of its compute service over the bus; a 400
        when that service is down (nobody would answer)."""
        if not hypervisor.up:
            raise ComputeServiceUnavailable(host=hypervisor.node.host)
        return await self.compute.get_host_uptime(ctx, hypervisor.node.host)

    async def _hypervisors(self, nodes: list[ComputeNode]) -> list[Hypervisor]:
        if not nodes:
            return []
        services = {s.host: s for s in await db_services.list_services(
            self.db, binary=COMPUTE_BINARY)}
        nodes = [n for n in nodes if n.host in services]
        usage = await compute_nodes.usage_by_provider(self.db, [n.uuid for n in nodes])
        instances = await compute_nodes.instances_on_nodes(
            self.db, [n.hypervisor_hostname for n in nodes])
        down_time = self.conf.get("DEFAULT", "service_down_time")
        return [Hypervisor(node=n, service=services[n.host],
                           up=db_services.is_up(services[n.host], down_time),
                           usage=usage[n.uuid],
                           instances=[i for i in instances if i.node == n.hypervisor_hostname])
                for n in nodes]
