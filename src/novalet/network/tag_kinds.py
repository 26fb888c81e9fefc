"""The kinds of resource that take tags, each a loader over its own service (which
answers 404 for what the caller can't see)."""

from __future__ import annotations

from novalet.common.context import RequestContext
from novalet.network.floating_ips import FloatingIPService
from novalet.network.networks import NetworkService
from novalet.network.neutron_security_groups import NeutronSecurityGroups
from novalet.network.ports import PortService
from novalet.network.routers import RouterService
from novalet.network.subnets import SubnetService
from novalet.network.tags import Loader, Owner


def loaders(networks: NetworkService, subnets: SubnetService, ports: PortService,
            groups: NeutronSecurityGroups, floatingips: FloatingIPService,
            routers: RouterService) -> dict[str, Loader]:
    async def network(ctx: RequestContext, network_id: str) -> Owner:
        record = await networks.get_network(ctx, network_id)
        return Owner(record.row.project_id or "", record.target())

    async def subnet(ctx: RequestContext, subnet_id: str) -> Owner:
        found = await subnets.get_subnet(ctx, subnet_id)
        # its network's flags (shared, external): what get_subnet reads too
        target = (await networks.get_network(ctx, found.network_id)).target()
        return Owner(found.project_id or "", {**target, "project_id": found.project_id or ""})

    async def port(ctx: RequestContext, port_id: str) -> Owner:
        return _own((await ports.get_port(ctx, port_id)).project_id)

    async def group(ctx: RequestContext, group_id: str) -> Owner:
        return _own((await groups.get_group(ctx, group_id)).project_id)

    async def floatingip(ctx: RequestContext, floatingip_id: str) -> Owner:
        return _own((await floatingips.get_floatingip(ctx, floatingip_id)).project_id)

    async def router(ctx: RequestContext, router_id: str) -> Owner:
        return _own((await routers.get_router(ctx, router_id)).project_id)

    return {"networks": network, "subnets": subnet, "ports": port,
            "security-groups": group, "floatingips": floatingip, "routers": router}


def _own(project_id: str) -> Owner:
    return Owner(project_id, {"project_id": project_id})
