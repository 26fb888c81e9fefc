"""Rows of get-me-a-network: the default external network (networks.is_default) and
each project's auto-allocated topology (auto_allocated_topologies)."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db.engine import Database, rows_matched
from novalet.db.models import AutoAllocatedTopology, Network, Subnet, VirtualInterface
from novalet.db.network import NetworkNotFound


class DefaultExternalNetworkExists(exceptions.Conflict):
    neutron_type = "DefaultExternalNetworkExists"
    msg_fmt = "A default external network already exists: %(net_id)s."


async def topology(db: Database, project_id: str) -> tuple[AutoAllocatedTopology, Network] | None:
    """The project's topology with its network, or None."""
    async with db.transaction() as s:
        row = (await s.execute(select(AutoAllocatedTopology, Network).join(
            Network, Network.id == AutoAllocatedTopology.network_id).where(
            AutoAllocatedTopology.project_id == project_id))).first()
    return None if row is None else (row[0], row[1])


async def record(db: Database, project_id: str, network_id: int,
                 router_id: str | None = None) -> bool:
    """Record the project's topology; False when a concurrent request recorded one
    first (the caller then removes what it made and shows the winner's)."""
    try:
        async with db.transaction() as s:
            s.add(AutoAllocatedTopology(project_id=project_id, network_id=network_id,
                                        router_id=router_id, created_at=utcnow()))
    except IntegrityError:
        return False
    return True


async def forget(db: Database, project_id: str, network_id: int) -> bool:
    """Drop the project's record if it still names network_id (compare-and-swap)."""
    async with db.transaction() as s:
        result = await s.execute(delete(AutoAllocatedTopology).where(
            AutoAllocatedTopology.project_id == project_id,
            AutoAllocatedTopology.network_id == network_id))
        return rows_matched(result) > 0


async def clear_router(db: Database, project_id: str, network_id: int) -> None:
    """The project's record names no router (its router went, its network stayed)."""
    async with db.transaction() as s:
        await s.execute(update(AutoAllocatedTopology).where(
            AutoAllocatedTopology.project_id == project_id,
            AutoAllocatedTopology.network_id == network_id).values(router_id=None))


async def default_external(db: Database, fallback_label: str) -> Network | None:
    """The default external network: the one marked is_default, else the oldest
    external network named fallback_label ([network] default_floating_pool)."""
    async with db.transaction() as s:
        marked = (await s.execute(select(Network).where(
            Network.is_default.is_(True), Network.external.is_(True)))).scalar_one_or_none()
        if marked is not None:
            return marked
        return (await s.execute(select(Network).where(
            Network.external.is_(True), Network.label == fallback_label).order_by(
            Network.id).limit(1))).scalar_one_or_none()


async def set_default(db: Database, network_uuid: str, is_default: bool) -> None:
    """Mark the network the default external one, or unmark it. Another default:
    DefaultExternalNetworkExists (409), the unique index deciding between racers."""
    try:
        async with db.transaction() as s:
            result = await s.execute(update(Network).where(Network.uuid == network_uuid)
                                     .values(is_default=True if is_default else None,
                                             updated_at=utcnow())
                                     .execution_options(synchronize_session=False))
            if rows_matched(result) == 0:
                raise NetworkNotFound(network_id=network_uuid)
    except IntegrityError:
        async with db.transaction() as s:
            other = (await s.execute(select(Network.uuid).where(
                Network.is_default.is_(True)))).scalar_one_or_none()
        raise DefaultExternalNetworkExists(net_id=other or "?") from None


async def taken_cidrs(db: Database) -> list[str]:
    """Every CIDR in use: networks' (guest and mirrored external ones) and subnets'."""
    async with db.transaction() as s:
        networks = (await s.execute(select(Network.cidr).where(
            Network.cidr.is_not(None)))).scalars()
        subnets = (await s.execute(select(Subnet.cidr))).scalars()
        return [c for c in [*networks, *subnets] if c]


async def has_ports(db: Database, network_id: int) -> bool:
    """Whether a port (a server's NIC or an unbound one) is on the network."""
    async with db.transaction() as s:
        return bool((await s.execute(select(func.count(VirtualInterface.id)).where(
            VirtualInterface.network_id == network_id))).scalar_one())
