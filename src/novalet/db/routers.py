"""Routers' rows: the router, its gateway (an external network and the floating_ips
row the router holds, router_id set) and its interfaces (router_interfaces, a subnet
each at the subnet's gateway address). Each write is one transaction; a router's
quota is counted under its project's quota lock."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db import tags
from novalet.db.engine import Database, rows_matched
from novalet.db.models import FixedIp, FloatingIp, Network, Router, RouterInterface, Subnet
from novalet.db.quotas import lock_project


class TooManyRouters(exceptions.Conflict):
    msg_fmt = "Quota exceeded for resources: ['router']."


class RouterGone(exceptions.NotFound):
    msg_fmt = "Router %(router_id)s could not be found"


class HasInterfaces(exceptions.Conflict):
    msg_fmt = "Router %(router_id)s has %(count)s interfaces."


class SubnetAttached(exceptions.Conflict):
    msg_fmt = "Subnet %(subnet_id)s is attached to a router already."


class InterfaceGone(exceptions.NotFound):
    msg_fmt = "Router %(router_id)s has no interface %(what)s."


class GatewayAddressTaken(exceptions.Conflict):
    msg_fmt = "%(address)s is held already."


class GatewayAddressNotInNetwork(exceptions.Invalid):
    msg_fmt = "%(address)s is not an address of network %(network_id)s."


class GatewayNetworkExhausted(exceptions.Conflict):
    msg_fmt = "No more addresses on network %(network_id)s."


@dataclass(frozen=True)
class Gateway:
    """The wanted gateway: the external network and, optionally, one address."""

    network: Network
    address: str | None
    enable_snat: bool


@dataclass(frozen=True)
class InterfaceRecord:
    """An interface: its port id (uuid), subnet and network ids, address (the
    subnet's gateway_ip)."""

    port_id: str
    subnet_id: str
    network_id: str
    ip_address: str | None
    project_id: str | None
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class RouterRecord:
    """A router with its gateway's network, subnet and address and its interfaces."""

    row: Router
    gw_network_id: str | None = None
    gw_subnet_id: str | None = None
    gw_address: str | None = None
    interfaces: tuple[InterfaceRecord, ...] = field(default_factory=tuple)
    gw_port_id: str | None = None  # the held floating_ips row's uuid: the gateway's port id


async def _records(s: AsyncSession, routers: list[Router]) -> list[RouterRecord]:
    if not routers:
        return []
    ids = [r.id for r in routers]
    gateways: dict[int | None, tuple[str | None, str | None, str | None]] = {
        rid: (net, address, port) for rid, net, address, port in (await s.execute(
            select(FloatingIp.router_id, Network.uuid, FloatingIp.address, FloatingIp.uuid)
            .join(Network, Network.id == FloatingIp.network_id)
            .where(FloatingIp.router_id.in_(ids)))).all()}
    gw_subnets = dict((await s.execute(select(Subnet.network_id, Subnet.uuid).where(
        Subnet.network_id.in_([r.gw_network_id for r in routers if r.gw_network_id]))
    )).all()) if any(r.gw_network_id for r in routers) else {}
    interfaces: dict[int, list[InterfaceRecord]] = {}
    for rid, port, subnet, network, gateway, project, made in (await s.execute(
            select(RouterInterface.router_id, RouterInterface.uuid, Subnet.uuid, Network.uuid,
                   Subnet.gateway_ip, Subnet.project_id, RouterInterface.created_at)
            .join(Subnet, Subnet.id == RouterInterface.subnet_id)
            .join(Network, Network.id == Subnet.network_id)
            .where(RouterInterface.router_id.in_(ids)).order_by(RouterInterface.id))).all():
        interfaces.setdefault(rid, []).append(
            InterfaceRecord(port, subnet, network, gateway, project, made))
    records = []
    for router in routers:
        gw_network, address, gw_port = gateways.get(router.id, (None, None, None))
        gw_subnet = gw_subnets.get(router.gw_network_id) \
            if gw_network and router.gw_network_id else None
        records.append(RouterRecord(router, gw_network, gw_subnet, address,
                                    tuple(interfaces.get(router.id, [])), gw_port))
    return records


async def list_routers(db: Database, project_id: str | None) -> list[RouterRecord]:
    """A project's routers (None: every project's), oldest first."""
    query = select(Router).order_by(Router.id)
    if project_id is not None:
        query = query.where(Router.project_id == project_id)
    async with db.transaction() as s:
        return await _records(s, list((await s.execute(query)).scalars()))


async def get_router(db: Database, router_uuid: str) -> RouterRecord | None:
    async with db.transaction() as s:
        return await _record(s, router_uuid)


async def router_of_port(db: Database, port_uuid: str) -> RouterRecord | None:
    """The router whose interface or gateway has this port id (None: no router's)."""
    interface = select(RouterInterface.router_id).where(RouterInterface.uuid == port_uuid)
    gateway = select(FloatingIp.router_id).where(FloatingIp.uuid == port_uuid,
                                                 FloatingIp.router_id.is_not(None))
    async with db.transaction() as s:
        row = (await s.execute(select(Router).where(
            Router.id.in_(interface.union(gateway))))).scalars().first()
        return (await _records(s, [row]))[0] if row is not None else None


async def _record(s: AsyncSession, router_uuid: str) -> RouterRecord | None:
    row = (await s.execute(select(Router).where(Router.uuid == router_uuid).execution_options(
        populate_existing=True))).scalar_one_or_none()
    return (await _records(s, [row]))[0] if row is not None else None


async def _locked(s: AsyncSession, router_uuid: str) -> Router:
    row = (await s.execute(select(Router).where(Router.uuid == router_uuid).with_for_update()
                           .execution_options(populate_existing=True))).scalar_one_or_none()
    if row is None:
        raise RouterGone(router_id=router_uuid)
    return row


async def create_router(db: Database, values: dict[str, Any], gateway: Gateway | None,
                        limit: int) -> RouterRecord:
    """Insert a router (and claim its gateway address) once the project holds fewer
    than `limit` routers (-1: no limit); all or nothing."""
    async with db.transaction() as s:
        await lock_project(s, values["project_id"])
        count = (await s.execute(select(func.count(Router.id)).where(
            Router.project_id == values["project_id"]))).scalar_one()
        if 0 <= limit <= count:
            raise TooManyRouters()
        router = Router(uuid=str(uuidlib.uuid4()), status="ACTIVE", **values,
                        gw_network_id=gateway.network.id if gateway else None,
                        enable_snat=gateway.enable_snat if gateway else True)
        s.add(router)
        await s.flush()
        if gateway is not None:
            await _claim(s, router.id, gateway)
        found = await _record(s, router.uuid)
        assert found is not None
        return found


_KEEP: Any = object()


async def update_router(db: Database, router_uuid: str, values: dict[str, Any],
                        gateway: Gateway | None | Any = _KEEP) -> RouterRecord:
    """Change the router's columns and, unless `gateway` is KEEP, its gateway: None
    clears it (the address goes back to the pool), a Gateway on the same network
    and address changes only enable_snat, another one moves it."""
    async with db.transaction() as s:
        router = await _locked(s, router_uuid)
        if gateway is not _KEEP:
            current = (await s.execute(select(FloatingIp).where(
                FloatingIp.router_id == router.id))).scalar_one_or_none()
            same = (gateway is not None and current is not None
                    and current.network_id == gateway.network.id
                    and gateway.address in (None, current.address))
            if not same:
                if current is not None:
                    await _release(s, router.id)
                if gateway is not None:
                    await _claim(s, router.id, gateway)
            values = {**values, "gw_network_id": gateway.network.id if gateway else None,
                      "enable_snat": gateway.enable_snat if gateway else True}
        if values:
            await s.execute(update(Router).where(Router.id == router.id).values(
                **values, updated_at=utcnow()).execution_options(synchronize_session=False))
        found = await _record(s, router_uuid)
        assert found is not None
        return found


KEEP = _KEEP


async def delete_router(db: Database, router_uuid: str) -> None:
    """Delete a router and give its gateway address back; HasInterfaces while a
    subnet is attached."""
    async with db.transaction() as s:
        router = await _locked(s, router_uuid)
        count = (await s.execute(select(func.count(RouterInterface.id)).where(
            RouterInterface.router_id == router.id))).scalar_one()
        if count:
            raise HasInterfaces(router_id=router_uuid, count=count)
        await _release(s, router.id)
        await tags.forget(s, "routers", [router_uuid])
        await s.delete(router)


async def _claim(s: AsyncSession, router_id: int, gateway: Gateway) -> None:
    """Hold a free address of the gateway's network (the given one, or any) for
    the router: no project, router_id set; no floating IP allocation takes it."""
    network = gateway.network
    free = (FloatingIp.network_id == network.id, FloatingIp.project_id.is_(None),
            FloatingIp.fixed_ip_id.is_(None), FloatingIp.router_id.is_(None))
    if gateway.address is not None:
        row = (await s.execute(select(FloatingIp).where(
            FloatingIp.address == gateway.address))).scalar_one_or_none()
        if row is None or row.network_id != network.id:
            raise GatewayAddressNotInNetwork(address=gateway.address, network_id=network.uuid)
        chosen: list[int] = [row.id]
    else:
        chosen = list((await s.execute(select(FloatingIp.id).where(*free).order_by(
            FloatingIp.id).limit(16))).scalars())
    for candidate in chosen:
        claimed = await s.execute(update(FloatingIp).where(FloatingIp.id == candidate, *free)
                                  .values(router_id=router_id, updated_at=utcnow())
                                  .execution_options(synchronize_session=False))
        if rows_matched(claimed) == 1:
            return
    if gateway.address is not None:
        raise GatewayAddressTaken(address=gateway.address)
    raise GatewayNetworkExhausted(network_id=network.uuid)


async def _release(s: AsyncSession, router_id: int) -> None:
    """The router's gateway address goes back to the pool; its gateway port (the
    row's uuid) goes, and with it the port's tags."""
    await tags.forget(s, "ports", select(FloatingIp.uuid).where(
        FloatingIp.router_id == router_id))
    await s.execute(update(FloatingIp).where(FloatingIp.router_id == router_id).values(
        router_id=None, updated_at=utcnow()).execution_options(synchronize_session=False))


async def add_interface(db: Database, router_uuid: str, subnet_id: int) -> str:
    """Join the subnet to the router; its new interface's port id. SubnetAttached
    when the subnet is on a router already (this one or another)."""
    port_id = str(uuidlib.uuid4())
    try:
        async with db.transaction() as s:
            router = await _locked(s, router_uuid)
            taken = (await s.execute(select(RouterInterface.id).where(
                RouterInterface.subnet_id == subnet_id))).first()
            if taken is not None:
                raise SubnetAttached(subnet_id=subnet_id)
            s.add(RouterInterface(uuid=port_id, router_id=router.id, subnet_id=subnet_id))
    except IntegrityError:  # a concurrent attach of the same subnet won
        raise SubnetAttached(subnet_id=subnet_id) from None
    return port_id


async def remove_interface(db: Database, router_uuid: str, *, subnet_uuid: str | None,
                           port_uuid: str | None) -> InterfaceRecord:
    """Detach the interface on `subnet_uuid` or with port id `port_uuid` (both:
    the same one); InterfaceGone when the router has none such."""
    async with db.transaction() as s:
        record = await _record(s, router_uuid)
        await _locked(s, router_uuid)
        if record is None:
            raise RouterGone(router_id=router_uuid)
        found = [i for i in record.interfaces
                 if (subnet_uuid is None or i.subnet_id == subnet_uuid)
                 and (port_uuid is None or i.port_id == port_uuid)]
        if not found:
            raise InterfaceGone(router_id=router_uuid, what=subnet_uuid or port_uuid)
        await s.execute(delete(RouterInterface).where(
            RouterInterface.uuid == found[0].port_id))
        await tags.forget(s, "ports", [found[0].port_id])  # the port goes with it
        return found[0]


async def interfaced(s: AsyncSession, subnet_ids: list[int]) -> int:
    """How many of these subnets are attached to a router."""
    if not subnet_ids:
        return 0
    return int((await s.execute(select(func.count(RouterInterface.id)).where(
        RouterInterface.subnet_id.in_(subnet_ids)))).scalar_one())


@dataclass(frozen=True)
class Route:
    """A guest network's way out: the router and its gateway (network id, address,
    SNAT on) or no gateway (network id and address None)."""

    router_uuid: str
    network_id: int
    gw_network_id: int | None
    gw_address: str | None
    enable_snat: bool
    admin_state_up: bool


async def routes(s: AsyncSession) -> list[Route]:
    """Every attached guest network with its router's gateway, in one query."""
    rows = (await s.execute(
        select(Router.uuid, Subnet.network_id, Router.gw_network_id, FloatingIp.address,
               Router.enable_snat, Router.admin_state_up)
        .join(RouterInterface, RouterInterface.router_id == Router.id)
        .join(Subnet, Subnet.id == RouterInterface.subnet_id)
        .outerjoin(FloatingIp, FloatingIp.router_id == Router.id))).all()
    return [Route(*row) for row in rows]


async def list_routes(db: Database) -> list[Route]:
    async with db.transaction() as s:
        return await routes(s)


async def floating_through(db: Database, gw_network_uuid: str,
                           network_uuids: list[str]) -> bool:
    """Whether a floating IP of the external network NATs to an address on one of
    these networks that reaches the outside only through a router."""
    if not network_uuids:
        return False
    external = select(Network.id).where(Network.uuid == gw_network_uuid).scalar_subquery()
    async with db.transaction() as s:
        found = (await s.execute(
            select(FloatingIp.id).join(FixedIp, FixedIp.id == FloatingIp.fixed_ip_id)
            .join(Network, Network.id == FixedIp.network_id)
            .where(FloatingIp.network_id == external, Network.uuid.in_(network_uuids),
                   Network.needs_router.is_(True)).limit(1))).first()
    return found is not None


async def floating_routers(db: Database, floating_ids: list[int]) -> dict[int, str]:
    """floating_ips id -> the router its NAT goes through: the one with an interface
    on the fixed IP's network and its gateway on the floating IP's network."""
    if not floating_ids:
        return {}
    async with db.transaction() as s:
        rows = (await s.execute(
            select(FloatingIp.id, Router.uuid)
            .join(FixedIp, FixedIp.id == FloatingIp.fixed_ip_id)
            .join(Subnet, Subnet.network_id == FixedIp.network_id)
            .join(RouterInterface, RouterInterface.subnet_id == Subnet.id)
            .join(Router, (Router.id == RouterInterface.router_id)
                  & (Router.gw_network_id == FloatingIp.network_id))
            .where(FloatingIp.id.in_(floating_ids)))).all()
    return dict(rows)


async def reaches(db: Database, fixed_network_id: int, external_network_id: int | None
                  ) -> tuple[bool, str | None]:
    """Whether a floating IP of the external network may NAT to an address of the
    guest network: a network of the nova-network face always (its hosts route it),
    one made through the network API only through a router with an interface on it
    and its gateway on that external network. Also the guest network's subnet id."""
    async with db.transaction() as s:
        network = (await s.execute(select(Network.needs_router, Subnet.uuid).outerjoin(
            Subnet, Subnet.network_id == Network.id).where(
            Network.id == fixed_network_id))).first()
        if network is None:
            return False, None
        if not network[0]:
            return True, network[1]
        router = (await s.execute(
            select(Router.id).join(RouterInterface, RouterInterface.router_id == Router.id)
            .join(Subnet, Subnet.id == RouterInterface.subnet_id)
            .where(Subnet.network_id == fixed_network_id,
                   Router.gw_network_id == external_network_id).limit(1))).first()
    return router is not None, network[1]
