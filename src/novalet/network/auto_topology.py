"""Get-me-a-network: a project's auto-allocated topology, and the network a server
create with `networks: "auto"` (compute API 2.37) gets.

The topology is a network ("auto_allocated_network") with an IPv4 subnet
("auto_allocated_subnet_v4", a free /24 cut from `[network]
auto_allocate_subnet_ranges`, else the tenant ranges), made on first request and
shown after, and a router ("auto_allocated_router") with its gateway on the
default external network and an interface on the subnet, so its guests reach the
outside (network-API networks need a router). The default external network is the one an admin marked
`is_default`, else the external network of `[network] default_floating_pool`.

For a server create, "auto" means: the one network the project can boot on; the
auto-allocated topology's when it has none; NetworkAmbiguous (409) when it has
several, as Nova does with Neutron.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import auto_topologies as db
from novalet.db import network as db_network
from novalet.db.models import Network
from novalet.network import subnet_ranges
from novalet.network.api import NetworkAPI, refresh_hosts
from novalet.network.networks import NetworkInUse, NetworkService
from novalet.network.project_ids import check_project_id
from novalet.network.routers import (RouterInterfaceNotFoundForSubnet, RouterNotFound,
                                     RouterService)
from novalet.network.subnets import SubnetService, SubnetSpec

LOG = logging.getLogger(__name__)

NETWORK_NAME = "auto_allocated_network"
SUBNET_NAME = "auto_allocated_subnet_v4"
ROUTER_NAME = "auto_allocated_router"
PREFIX = 24  # the size of an auto-allocated subnet
_ATTEMPTS = 3  # picks of a free CIDR before a concurrent creator's win is an error


class AutoAllocationFailure(exceptions.Conflict):
    neutron_type = "AutoAllocationFailure"
    msg_fmt = "Deployment error: %(reason)s."


class NotAuthorized(exceptions.Forbidden):
    neutron_type = "NotAuthorized"
    msg_fmt = "Not authorized."


class NetworkAmbiguous(exceptions.Conflict):
    msg_fmt = ("More than one possible network found. Specify network ID(s) to select "
               "which one(s) to connect to.")


class UnableToAutoAllocateNetwork(exceptions.Invalid):
    msg_fmt = "Unable to automatically allocate a network for project %(project_id)s: %(reason)s"


@dataclass(frozen=True)
class Topology:
    """A project's topology as the network API shows it (ids are uuids)."""

    project_id: str
    network_id: str
    router_id: str | None = None


class AutoTopologyService:
    """Show (making it on first call), check and delete a project's topology."""

    def __init__(self, nova: NetworkAPI) -> None:
        self.nova = nova
        self.db = nova.db
        self.conf = nova.conf
        self.networks = NetworkService(nova)
        self.subnets = SubnetService(nova.db, nova.conf, self._refresh)
        self.routers = RouterService(nova)

    async def _refresh(self, hosts: set[str]) -> None:
        await refresh_hosts(self.nova.refresh_hosts, hosts)  # set after wiring

    # --- the network API's face ------------------------------------------------

    async def get_topology(self, ctx: RequestContext, project_id: str) -> Topology:
        """The project's topology, made now if it has none (idempotent after).
        Another project's: NotAuthorized (403) unless admin; making one needs a
        member's (or an admin's) rights: a reader only sees an existing one."""
        self._authorize(ctx, "get_auto_allocated_topology", project_id)
        existing = await self._existing(project_id)
        if existing is not None:
            return existing
        policy.enforce(ctx, "create_network", project_id, {"project_id": project_id})
        return await self.allocate(project_id)

    async def check_requirements(self, ctx: RequestContext, project_id: str) -> None:
        """The dry run (`fields=dry-run`): AutoAllocationFailure (409) when a topology
        could not be made now; nothing is made."""
        self._authorize(ctx, "get_auto_allocated_topology", project_id)
        await self._requirements()

    async def delete_topology(self, ctx: RequestContext, project_id: str) -> None:
        """Remove the project's topology (its network and subnet); none: nothing to
        do. A server still on the network: NetworkInUse (409), nothing removed."""
        self._authorize(ctx, "delete_auto_allocated_topology", project_id)
        found = await db.topology(self.db, project_id)
        if found is None:
            return
        record, network = found
        acting = self._acting_for(project_id)
        if await db.has_ports(self.db, network.id):  # before the router goes
            raise NetworkInUse(network_id=network.uuid)
        try:
            await self._take_down(acting, network.uuid, record.router_id)
        except NetworkInUse:  # a boot came in after the check: the router went already
            if record.router_id:
                await db.clear_router(self.db, project_id, network.id)
            raise
        await db.forget(self.db, project_id, network.id)  # cascaded already, mostly
        LOG.info("Auto-allocated topology of project %s (network %s) deleted", project_id,
                 network.uuid)

    @staticmethod
    def _authorize(ctx: RequestContext, action: str, project_id: str) -> None:
        # Neutron's check before its policy: a project's own topology, or an admin
        if project_id != ctx.project_id and not ctx.is_admin:
            raise NotAuthorized()
        check_project_id(project_id)  # what the rows can hold
        policy.enforce(ctx, action, project_id, {"project_id": project_id})

    # --- the compute API's face --------------------------------------------------

    async def network_for_boot(self, ctx: RequestContext) -> str | None:
        """The network uuid `networks: "auto"` boots on: the caller's project's one
        bootable network, else its auto-allocated topology's (made under the caller's
        create_network rights, as the network API's show makes it). NetworkAmbiguous
        (409) with several; UnableToAutoAllocateNetwork (400) when none can be made or
        the token names no project. None in vlan mode for a project with no network:
        the boot then gets the project's VLAN network as always (claimed from the
        pool, or cut from fixed_range)."""
        project_id = ctx.project_id or ""
        if not project_id:
            raise UnableToAutoAllocateNetwork(project_id="(none)", reason=(
                "the token is scoped to no project"))
        candidates = await self.bootable_networks(project_id)
        if len(candidates) > 1:
            raise NetworkAmbiguous()
        if candidates:
            return candidates[0].uuid
        if self.nova.mode == "vlan":
            return None
        existing = await self._existing(project_id)
        if existing is not None:
            return existing.network_id
        try:
            policy.enforce(ctx, "create_network", project_id, {"project_id": project_id})
            return (await self.allocate(project_id)).network_id
        except exceptions.NovaletError as exc:
            LOG.warning("No network for project %s: %s", project_id, exc)
            raise UnableToAutoAllocateNetwork(project_id=project_id,
                                              reason=exc.message) from None

    async def bootable_networks(self, project_id: str) -> list[Network]:
        """The guest networks a project may boot on without naming one: its own and
        (outside vlan mode, where they are a pool to claim) the unassigned ones, with
        a subnet (a network without one has no address to give)."""
        rows = await db_network.list_networks(self.db, project_id)
        vlan = self.nova.mode == "vlan"
        return [n for n in rows if n.cidr and (n.project_id == project_id or not vlan)]

    # --- making it ---------------------------------------------------------------

    async def allocate(self, project_id: str) -> Topology:
        """Make the topology: network, subnet, router. Two concurrent
        requests may both build one; the first recorded wins and the other's is
        removed, so both answer with the same network."""
        external, _ = await self._requirements()
        acting = self._acting_for(project_id)
        record = await self.networks.create_network(acting, {
            "name": NETWORK_NAME, "project_id": project_id,
            "description": "get-me-a-network (auto-allocated topology)"})
        network_id = record.row.uuid
        router_id: str | None = None
        try:
            subnet_id = await self._make_subnet(acting, project_id, network_id)
            router_id = await self._attach_router(acting, project_id, subnet_id, external)
        except BaseException:  # what was made before the failure goes
            await self._remove(acting, network_id, router_id)
            raise
        if not await db.record(self.db, project_id, record.row.id, router_id):
            await self._remove(acting, network_id, router_id)
            winner = await self._existing(project_id)
            if winner is None:  # the winner's went meanwhile: a rare retry by the caller
                raise AutoAllocationFailure(reason="a concurrent request changed the "
                                            "topology; try again")
            return winner
        LOG.info("Auto-allocated topology for project %s: network %s, subnet %s",
                 project_id, network_id, subnet_id)
        return Topology(project_id=project_id, network_id=network_id, router_id=router_id)

    async def _make_subnet(self, acting: RequestContext, project_id: str,
                           network_id: str) -> str:
        """A free /24 of the ranges; a CIDR a concurrent creator took first is picked
        again (the subnet insert checks overlaps in its transaction)."""
        for attempt in range(_ATTEMPTS):
            cidr = await self._free_cidr()
            if cidr is None:
                raise AutoAllocationFailure(reason=_no_range(self._ranges()))
            try:
                subnet = await self.subnets.create_subnet(acting, SubnetSpec(
                    network_id=network_id, cidr=str(cidr), name=SUBNET_NAME,
                    project_id=project_id))
                return subnet.id
            except exceptions.Invalid:
                if attempt + 1 == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _remove(self, acting: RequestContext, network_id: str,
                      router_id: str | None = None) -> None:
        try:
            await self._take_down(acting, network_id, router_id)
        except exceptions.NovaletError as exc:  # logged: the original error matters
            LOG.warning("Could not remove auto-allocated network %s: %s", network_id, exc)

    async def _take_down(self, acting: RequestContext, network_id: str,
                         router_id: str | None) -> None:
        """The topology's router (its interface, then it), then its network."""
        if router_id:
            await self._detach_router(acting, router_id, network_id)
        await self.networks.delete_network(acting, network_id)

    async def _requirements(self) -> tuple[Network, ipaddress.IPv4Network]:
        """The default external network and a free CIDR, or AutoAllocationFailure."""
        external = await db.default_external(
            self.db, str(self.conf.get("network", "default_floating_pool")))
        if external is None:
            raise AutoAllocationFailure(reason="No default router:external network")
        cidr = await self._free_cidr()
        if cidr is None:
            raise AutoAllocationFailure(reason=_no_range(self._ranges()))
        return external, cidr

    async def _free_cidr(self) -> ipaddress.IPv4Network | None:
        taken = [ipaddress.ip_network(c, strict=False) for c in await db.taken_cidrs(self.db)]
        for candidate in _candidates(self._ranges()):
            if any(candidate.overlaps(t) for t in taken):
                continue
            if subnet_ranges.refusal(candidate, self.conf, is_admin=True) is None:
                return candidate
        return None

    def _ranges(self) -> list[ipaddress.IPv4Network]:
        text = str(self.conf.get("network", "auto_allocate_subnet_ranges") or "")
        ranges = [r for r in map(subnet_ranges.ipv4_network, text.split(",")) if r is not None]
        return ranges or subnet_ranges.tenant_ranges(self.conf)

    async def _existing(self, project_id: str) -> Topology | None:
        found = await db.topology(self.db, project_id)
        if found is None:
            return None
        record, network = found
        return Topology(project_id=project_id, network_id=network.uuid,
                        router_id=record.router_id)

    async def _attach_router(self, acting: RequestContext, project_id: str, subnet_id: str,
                             external: Network) -> str:
        """The topology's router: its gateway on `external`, an interface on the
        subnet; its id. A failure after the router exists removes it."""
        router = await self.routers.create_router(acting, {
            "name": ROUTER_NAME, "project_id": project_id,
            "external_gateway_info": {"network_id": external.uuid}})
        try:
            await self.routers.add_interface(acting, router.id, {"subnet_id": subnet_id})
        except BaseException:
            await self.routers.delete_router(acting, router.id)
            raise
        return router.id

    async def _detach_router(self, acting: RequestContext, router_id: str,
                             network_id: str) -> None:
        """Remove the topology's router: its interfaces on the network's subnets
        (the one it was given), then it."""
        try:
            for subnet in await self.subnets.list_subnets(acting):
                if subnet.network_id != network_id:
                    continue
                try:
                    await self.routers.remove_interface(acting, router_id,
                                                        {"subnet_id": subnet.id})
                except RouterInterfaceNotFoundForSubnet:  # detached by hand already
                    pass
            await self.routers.delete_router(acting, router_id)
        except RouterNotFound:  # removed by hand already
            pass

    @staticmethod
    def _acting_for(project_id: str) -> RequestContext:
        """The service acting for the project (its checks passed already)."""
        return RequestContext(project_id=project_id, roles=["admin", "member", "reader"])


def _candidates(ranges: list[ipaddress.IPv4Network]) -> Iterator[ipaddress.IPv4Network]:
    for supernet in ranges:
        yield from supernet.subnets(new_prefix=max(PREFIX, supernet.prefixlen))


def _no_range(ranges: list[ipaddress.IPv4Network]) -> str:
    return ("No free /24 left for an auto-allocated subnet in "
            + ", ".join(map(str, ranges)) + " ([network] auto_allocate_subnet_ranges)")


