"""Floating IPs as the network API sees them: the held floating_ips rows with the
port (virtual interface) and fixed address they NAT to and their external network;
allocation of a given or any free address of an external network; the ports a
floating IP may go to. (db/network.py keeps the compute proxy's side: pools by
name, association by row id.)"""

from __future__ import annotations

import random
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db import quotas as db_quotas
from novalet.db import tags
from novalet.db.engine import Database, rows_matched
from novalet.db.models import FixedIp, FloatingIp, Instance, Network, VirtualInterface

_CAS_ATTEMPTS = 64
_CANDIDATES = 16


class AddressTaken(exceptions.Conflict):
    msg_fmt = "%(address)s is held already."


class AddressNotInNetwork(exceptions.Invalid):
    msg_fmt = "%(address)s is not a floating IP of network %(network_id)s."


class NetworkExhausted(exceptions.Conflict):
    msg_fmt = "No more floating IPs on network %(network_id)s."


@dataclass(frozen=True)
class FloatingRecord:
    """A held floating IP, what it NATs to (port uuid, fixed address, fixed_ips id)
    and the uuid of its external network."""

    row: FloatingIp
    network_uuid: str | None
    port_id: str | None
    fixed_address: str | None
    instance_uuid: str | None


@dataclass(frozen=True)
class PortRecord:
    """A port as a floating IP target: its project, host (None: bound to no server,
    or its server is on none yet) and fixed IPs."""

    vif: VirtualInterface
    project_id: str
    host: str | None
    fixed: tuple[FixedIp, ...]


def _query() -> Any:
    return (select(FloatingIp, Network.uuid, VirtualInterface.uuid, FixedIp.address,
                   FixedIp.instance_uuid)
            .outerjoin(Network, Network.id == FloatingIp.network_id)
            .outerjoin(FixedIp, FixedIp.id == FloatingIp.fixed_ip_id)
            .outerjoin(VirtualInterface, VirtualInterface.id == FixedIp.virtual_interface_id)
            .where(FloatingIp.project_id.is_not(None))  # a free address is no floating IP
            .order_by(FloatingIp.id))


async def list_held(db: Database, project_id: str | None) -> list[FloatingRecord]:
    """The floating IPs a project holds (None: every project's)."""
    query = _query()
    if project_id is not None:
        query = query.where(FloatingIp.project_id == project_id)
    async with db.transaction() as s:
        return [FloatingRecord(*row) for row in (await s.execute(query)).all()]


async def get_held(db: Database, floating_uuid: str) -> FloatingRecord | None:
    async with db.transaction() as s:
        row = (await s.execute(_query().where(FloatingIp.uuid == floating_uuid))).first()
    return FloatingRecord(*row) if row is not None else None


class FloatingIpMoved(exceptions.Conflict):
    neutron_type = "Conflict"
    msg_fmt = ("Floating IP %(address)s changed while it was being associated (released, "
               "given to another project or associated elsewhere meanwhile): read it again "
               "and retry")


class FixedIpHasFloating(exceptions.Conflict):
    msg_fmt = ("Fixed IP %(fixed)s already has floating IP %(other)s of the same external "
               "network")


async def associate(db: Database, floating_id: int, fixed_ip_id: int,
                                host: str | None, interface: str | None, *,
                                owner: str | None = None, old_fixed_ip_id: int | None = None,
                                exclusive: bool = False) -> None:
    """NAT the floating IP to fixed_ip_id, as a compare-and-swap: only while `owner`
    still holds it (None: anyone does) and it is still NATed to old_fixed_ip_id;
    FloatingIpMoved otherwise. `exclusive` (the network API): FixedIpHasFloating when
    another floating IP of the same external network is NATed to that fixed IP. The
    fixed IP's row is written first so that concurrent associations to it queue."""
    async with db.transaction() as s:
        if exclusive:
            await s.execute(update(FixedIp).where(FixedIp.id == fixed_ip_id).values(
                updated_at=utcnow()).execution_options(synchronize_session=False))
            network_id = select(FloatingIp.network_id).where(
                FloatingIp.id == floating_id).scalar_subquery()
            other = (await s.execute(select(FloatingIp.address).where(
                FloatingIp.fixed_ip_id == fixed_ip_id, FloatingIp.id != floating_id,
                FloatingIp.network_id == network_id).limit(1))).scalar()
            if other is not None:
                fixed = (await s.execute(select(FixedIp.address).where(
                    FixedIp.id == fixed_ip_id))).scalar()
                raise FixedIpHasFloating(fixed=fixed, other=other)
        conditions = [FloatingIp.id == floating_id,
                      FloatingIp.fixed_ip_id.is_not_distinct_from(old_fixed_ip_id)]
        conditions.append(FloatingIp.project_id.is_not(None) if owner is None
                          else FloatingIp.project_id == owner)
        result = await s.execute(update(FloatingIp).where(*conditions).values(
            fixed_ip_id=fixed_ip_id, host=host, interface=interface,
            updated_at=utcnow()).execution_options(synchronize_session=False))
        if rows_matched(result) != 1:
            address = (await s.execute(select(FloatingIp.address).where(
                FloatingIp.id == floating_id))).scalar()
            raise FloatingIpMoved(address=address)


async def detach(db: Database, floating_id: int, owner: str | None,
                 fixed_ip_id: int | None) -> bool:
    """db/network.disassociate_floating_ip: a compare-and-swap on what was read."""
    conditions = [FloatingIp.id == floating_id, FloatingIp.fixed_ip_id.is_not(None)]
    if owner is not None:
        conditions.append(FloatingIp.project_id == owner)
    if fixed_ip_id is not None:
        conditions.append(FloatingIp.fixed_ip_id == fixed_ip_id)
    async with db.transaction() as s:
        result = await s.execute(update(FloatingIp).where(*conditions).values(
            fixed_ip_id=None, host=None, updated_at=utcnow()).execution_options(
            synchronize_session=False))
    return bool(rows_matched(result))


async def release(db: Database, floating_id: int, owner: str | None) -> bool:
    """db/network.release_floating_ip: only while unassociated and held (by owner)."""
    held = (FloatingIp.project_id.is_not(None) if owner is None
            else FloatingIp.project_id == owner)
    async with db.transaction() as s:
        result = await s.execute(update(FloatingIp).where(
            FloatingIp.id == floating_id, FloatingIp.fixed_ip_id.is_(None), held).values(
            project_id=None, auto_assigned=False, description="",
            updated_at=utcnow()).execution_options(synchronize_session=False))
        if rows_matched(result):  # its id is a new one at the next allocation
            await tags.forget(s, "floatingips", select(FloatingIp.uuid).where(
                FloatingIp.id == floating_id))
    return bool(rows_matched(result))


async def allocate(db: Database, project_id: str, network: Network, address: str | None,
                   description: str, admit: db_quotas.Admission[None]) -> FloatingIp:
    """Give the project `address` (or a free address) of the external network, with
    a new uuid, once the floating_ips quota admits it (under the project's quota lock)."""
    async with db.transaction() as s:
        await db_quotas.admit_locked(s, project_id, None, admit)
        values = {"project_id": project_id, "auto_assigned": False, "description": description,
                  "uuid": str(uuidlib.uuid4()), "updated_at": utcnow()}
        if address is not None:
            return await _claim_address(s, network, address, values)
        free = (FloatingIp.network_id == network.id, FloatingIp.project_id.is_(None),
                FloatingIp.fixed_ip_id.is_(None), FloatingIp.router_id.is_(None))
        query = select(FloatingIp.id).where(*free).order_by(
            FloatingIp.updated_at.is_not(None), FloatingIp.updated_at, FloatingIp.id
        ).limit(_CANDIDATES)
        for attempt in range(_CAS_ATTEMPTS):
            candidates = list((await s.execute(query)).scalars())
            if not candidates:
                break
            chosen = candidates[0] if attempt == 0 else random.choice(candidates)
            claimed = await s.execute(update(FloatingIp).where(
                FloatingIp.id == chosen, *free).values(**values).execution_options(
                synchronize_session=False))
            if rows_matched(claimed) == 1:
                return await _row(s, chosen)
    raise NetworkExhausted(network_id=network.uuid)


async def _claim_address(s: AsyncSession, network: Network, address: str,
                         values: dict[str, Any]) -> FloatingIp:
    row = (await s.execute(select(FloatingIp).where(
        FloatingIp.address == address))).scalar_one_or_none()
    if row is None or row.network_id != network.id:
        raise AddressNotInNetwork(address=address, network_id=network.uuid)
    claimed = await s.execute(update(FloatingIp).where(
        FloatingIp.id == row.id, FloatingIp.project_id.is_(None),
        FloatingIp.fixed_ip_id.is_(None), FloatingIp.router_id.is_(None)).values(**values).execution_options(
        synchronize_session=False))
    if rows_matched(claimed) != 1:
        raise AddressTaken(address=address)
    return await _row(s, row.id)


async def _row(s: AsyncSession, row_id: int) -> FloatingIp:
    return (await s.execute(select(FloatingIp).where(FloatingIp.id == row_id).execution_options(
        populate_existing=True))).scalar_one()


async def set_description(db: Database, row_id: int, description: str) -> None:
    async with db.transaction() as s:
        await s.execute(update(FloatingIp).where(FloatingIp.id == row_id).values(
            description=description, updated_at=utcnow()).execution_options(
            synchronize_session=False))


async def port(db: Database, port_uuid: str) -> PortRecord | None:
    """A port with its fixed IPs (oldest first): a live server's NIC, or a port bound
    to nothing (Neutron lets a floating IP wait on it; the hosts NAT it once a server
    is booted on the port). None when there is none."""
    async with db.transaction() as s:
        found = (await s.execute(
            select(VirtualInterface, func.coalesce(VirtualInterface.project_id,
                                                   Instance.project_id), Instance.host)
            .outerjoin(Instance, and_(Instance.uuid == VirtualInterface.instance_uuid,
                                      Instance.deleted.is_(False)))
            .where(VirtualInterface.uuid == port_uuid,
                   VirtualInterface.instance_uuid.is_(None) | Instance.id.is_not(None))
        )).first()
        if found is None or found[1] is None:
            return None
        fixed = (await s.execute(select(FixedIp).where(
            FixedIp.virtual_interface_id == found[0].id).order_by(FixedIp.id))).scalars()
        return PortRecord(found[0], found[1], found[2], tuple(fixed))
