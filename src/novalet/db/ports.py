"""Ports as the network API has them: `virtual_interfaces` rows (docs/network-api.md),
a server's NIC being a port bound to it and a port made through the API one bound
to nothing (`instance_uuid` NULL). An unbound port holds its fixed IP like a NIC
does (`fixed_ips.allocated`, `virtual_interface_id`) but with no instance, so no
host serves it until a server is booted on it. (db/network.py keeps the allocator
this module claims addresses with.)"""

from __future__ import annotations

import uuid as uuidlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db import network as db_network
from novalet.db import port_groups, tags
from novalet.db.engine import Database, rows_matched
from novalet.db.quotas import lock_project
from novalet.db.models import (FixedIp, FloatingIp, Instance, Network, SecurityGroup,
                               SecurityGroupInstance, Subnet, VirtualInterface)


_MAC_ATTEMPTS = 16


class PortNotFound(exceptions.NotFound):
    msg_fmt = "Port %(port_id)s could not be found."


class MacAddressInUse(exceptions.Conflict):
    msg_fmt = ("Unable to complete operation for network %(net_id)s. The mac address "
               "%(mac)s is in use.")


class AddressTaken(exceptions.Conflict):
    """The address asked for is not free: `holder` says why (a port, reserved)."""

    msg_fmt = "%(address)s is %(holder)s."


class PoolExhausted(exceptions.Conflict):
    msg_fmt = "No more IP addresses available on network %(net_id)s."


class PortNetworkNotUsable(exceptions.Invalid):
    msg_fmt = ("Port %(port_id)s is on network %(net_id)s, which is not the project's (nor "
               "shared): another project holds it now. Make a port on one of your networks.")


def usable_by(network: Network, project_id: str, vlan_mode: bool) -> bool:
    """A member's project may put a port (and so a server) on the network: its own, a
    shared one, or an unassigned one outside vlan mode (there the unassigned networks
    are the pool projects claim at first boot, as network/api.py's boot rule)."""
    return (network.project_id == project_id or network.shared
            or (network.project_id is None and not vlan_mode))


class PortBound(exceptions.Conflict):
    msg_fmt = "Port %(port_id)s is bound to instance %(instance_uuid)s."


@dataclass(frozen=True)
class BoundTo:
    """The server a port is bound to, as its view needs it."""

    uuid: str
    project_id: str
    host: str | None
    vm_state: str
    availability_zone: str | None
    group_uuids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PortRow:
    """A port with its network, its one fixed IP (None: a NIC whose address went
    with its subnet), that network's subnet uuid and the server it is bound to."""

    vif: VirtualInterface
    network: Network
    fixed_ip: str | None
    subnet_id: str | None
    server: BoundTo | None

    @property
    def project_id(self) -> str | None:
        """A NIC made before 0017 stored no project: its server's."""
        return self.vif.project_id or (self.server.project_id if self.server else None)


def _ports_query() -> Any:
    return (select(VirtualInterface, Network, FixedIp.address, Subnet.uuid, Instance)
            .join(Network, Network.id == VirtualInterface.network_id)
            .outerjoin(FixedIp, FixedIp.virtual_interface_id == VirtualInterface.id)
            .outerjoin(Subnet, Subnet.network_id == Network.id)
            .outerjoin(Instance, (Instance.uuid == VirtualInterface.instance_uuid)
                       & Instance.deleted.is_(False))
            .order_by(VirtualInterface.id)
            .execution_options(populate_existing=True))


async def _rows(s: AsyncSession, query: Any) -> list[PortRow]:
    found = (await s.execute(query)).all()
    instances = [i.uuid for *_, i in found if i is not None]
    groups: dict[str, list[str]] = defaultdict(list)
    if instances:
        for instance_uuid, group_uuid in (await s.execute(
                select(SecurityGroupInstance.instance_uuid, SecurityGroup.uuid)
                .join(SecurityGroup, SecurityGroup.id == SecurityGroupInstance.security_group_id)
                .where(SecurityGroupInstance.instance_uuid.in_(instances))
                .order_by(SecurityGroup.id))).all():
            groups[instance_uuid].append(group_uuid)
    rows: dict[int, PortRow] = {}
    for vif, network, address, subnet_uuid, instance in found:
        server = None if instance is None else BoundTo(
            instance.uuid, instance.project_id, instance.host, instance.vm_state,
            instance.availability_zone, groups.get(instance.uuid, []))
        rows.setdefault(vif.id, PortRow(vif, network, address, subnet_uuid, server))
    return list(rows.values())


async def list_ports(db: Database, project_id: str | None) -> list[PortRow]:
    """Every port (project_id None), or a project's: its own and its servers' NICs."""
    query = _ports_query()
    if project_id is not None:
        query = query.where(or_(VirtualInterface.project_id == project_id,
                                VirtualInterface.project_id.is_(None)
                                & (Instance.project_id == project_id)))
    async with db.transaction() as s:
        return await _rows(s, query)


async def get_port(db: Database, port_uuid: str) -> PortRow:
    async with db.transaction() as s:
        return await _port(s, port_uuid)


async def _port(s: AsyncSession, port_uuid: str) -> PortRow:
    rows = await _rows(s, _ports_query().where(VirtualInterface.uuid == port_uuid))
    if not rows:
        raise PortNotFound(port_id=port_uuid)
    return rows[0]


async def existing_group_uuids(db: Database, project_id: str | None,
                               group_uuids: Sequence[str]) -> set[str]:
    """Those of `group_uuids` that exist (and, project_id given, are that project's)."""
    if not group_uuids:
        return set()
    query = select(SecurityGroup.uuid).where(SecurityGroup.uuid.in_(list(group_uuids)))
    if project_id is not None:
        query = query.where(SecurityGroup.project_id == project_id)
    async with db.transaction() as s:
        return set((await s.execute(query)).scalars())


# --- writes ---------------------------------------------------------------------

class TooManyPorts(exceptions.Conflict):
    neutron_type = "OverQuota"
    msg_fmt = ("Quota exceeded for resources: ['port']: project %(project_id)s has "
               "%(used)s of %(allowed)s ports; delete some, or ask an admin for a larger "
               "[quota] ports.")


async def _admit_port(s: AsyncSession, project_id: str, allowed: int) -> None:
    """TooManyPorts when the project holds `allowed` ports (its servers' NICs count,
    as in Neutron) already; under the project's quota lock, so creators queue up."""
    if allowed < 0:
        return
    await lock_project(s, project_id)
    servers = select(Instance.uuid).where(Instance.project_id == project_id)
    used = (await s.execute(select(func.count()).select_from(VirtualInterface).where(or_(
        VirtualInterface.project_id == project_id,  # a NIC stores no project
        VirtualInterface.project_id.is_(None) & VirtualInterface.instance_uuid.in_(servers)
    )))).scalar_one()
    if used >= allowed:
        raise TooManyPorts(project_id=project_id, used=used, allowed=allowed)


async def create_port(db: Database, network_uuid: str, values: dict[str, Any],
                      mac: str | None, address: str | None, quota: int = -1) -> PortRow:
    """A port bound to nothing on the network, with `mac` (else a random unique one)
    and `address` (else the allocator's pick), in one transaction: MacAddressInUse,
    AddressTaken or PoolExhausted leave nothing behind. (No savepoint: on SQLite a
    savepoint opened before any write commits when released, so a later refusal
    could not take the row back; a MAC lost to a concurrent creator fails the whole
    transaction instead, which is tried again with another random MAC.)"""
    for _ in range(1 if mac else _MAC_ATTEMPTS):
        try:
            async with db.transaction() as s:
                await _admit_port(s, values["project_id"], quota)
                network = (await s.execute(select(Network).where(
                    Network.uuid == network_uuid))).scalar_one_or_none()
                if network is None:
                    raise db_network.NetworkNotFound(network_id=network_uuid)
                vif = VirtualInterface(uuid=str(uuidlib.uuid4()), instance_uuid=None,
                                       network_id=network.id, **values,
                                       address=mac or await _free_mac(s))
                if mac and await _mac_taken(s, mac):
                    raise MacAddressInUse(net_id=network_uuid, mac=mac)
                s.add(vif)
                await s.flush()
                await _claim(s, network, vif.id, address)
                return await _port(s, vif.uuid)
        except IntegrityError:
            if mac:
                raise MacAddressInUse(net_id=network_uuid, mac=mac) from None
    raise MacAddressInUse(net_id=network_uuid, mac="(random)")


async def _mac_taken(s: AsyncSession, mac: str) -> bool:
    return (await s.execute(select(VirtualInterface.id).where(
        VirtualInterface.address == mac))).first() is not None


async def _free_mac(s: AsyncSession) -> str:
    for _ in range(_MAC_ATTEMPTS):
        mac = db_network.random_mac()
        if not await _mac_taken(s, mac):
            return mac
    raise MacAddressInUse(net_id="", mac="(random)")


async def _claim(s: AsyncSession, network: Network, vif_id: int, address: str | None) -> None:
    # the one allocator, shared with server NICs
    claimed = await db_network._claim_free_address(  # noqa: SLF001
        s, network.id, address, virtual_interface_id=vif_id, allocated=True)
    if claimed is not None:
        return
    if address is None:
        raise PoolExhausted(net_id=network.uuid)
    raise AddressTaken(address=address, holder=await _holder(s, network.id, address))


async def _holder(s: AsyncSession, network_id: int, address: str) -> str:
    """Why an address of the network can't be claimed, for the error."""
    row = (await s.execute(select(FixedIp, VirtualInterface.uuid).outerjoin(
        VirtualInterface, VirtualInterface.id == FixedIp.virtual_interface_id).where(
        FixedIp.network_id == network_id, FixedIp.address == address))).first()
    if row is None:
        return "not an address of the network"
    fixed, port_uuid = row
    if port_uuid is not None or fixed.instance_uuid is not None or fixed.allocated:
        return f"in use by port {port_uuid}" if port_uuid else "in use"
    return "reserved"


async def update_port(db: Database, port_uuid: str, values: dict[str, Any]) -> PortRow:
    """Set columns of a port; the port as it is then (MacAddressInUse when a new
    `address` is another port's)."""
    try:
        async with db.transaction() as s:
            result = await s.execute(update(VirtualInterface).where(
                VirtualInterface.uuid == port_uuid).values(**values, updated_at=utcnow())
                .execution_options(synchronize_session=False))
            if rows_matched(result) == 0:
                raise PortNotFound(port_id=port_uuid)
            return await _port(s, port_uuid)
    except IntegrityError:
        raise MacAddressInUse(net_id="", mac=values.get("address")) from None


async def set_instance_groups(db: Database, instance_uuid: str, group_uuids: Sequence[str]
                              ) -> None:
    """Make the instance a member of exactly these groups (by uuid), in one transaction."""
    async with db.transaction() as s:
        ids = dict((await s.execute(select(SecurityGroup.uuid, SecurityGroup.id).where(
            SecurityGroup.uuid.in_(list(group_uuids))))).all()) if group_uuids else {}
        await s.execute(delete(SecurityGroupInstance).where(
            SecurityGroupInstance.instance_uuid == instance_uuid))
        for group_uuid in group_uuids:
            if group_uuid in ids:
                s.add(SecurityGroupInstance(security_group_id=ids[group_uuid],
                                            instance_uuid=instance_uuid))


async def change_address(db: Database, port_uuid: str, address: str) -> PortRow:
    """Move an unbound port to another free address of its network: the new one is
    claimed before the old one is freed, in one transaction (PortBound when a server
    took the port meanwhile)."""
    async with db.transaction() as s:
        vif = (await s.execute(select(VirtualInterface).where(
            VirtualInterface.uuid == port_uuid).with_for_update())).scalar_one_or_none()
        if vif is None:
            raise PortNotFound(port_id=port_uuid)
        if vif.instance_uuid is not None:
            raise PortBound(port_id=port_uuid, instance_uuid=vif.instance_uuid)
        old = list((await s.execute(select(FixedIp.id).where(
            FixedIp.virtual_interface_id == vif.id))).scalars())
        network = (await s.execute(select(Network).where(
            Network.id == vif.network_id))).scalar_one()
        await _claim(s, network, vif.id, address)
        await _free(s, old)
        await s.execute(update(VirtualInterface).where(VirtualInterface.id == vif.id).values(
            updated_at=utcnow()).execution_options(synchronize_session=False))
        return await _port(s, port_uuid)


async def _free(s: AsyncSession, fixed_ids: Sequence[int]) -> None:
    if fixed_ids:  # a floating IP waiting on the port lets go: the address may go elsewhere
        await s.execute(update(FloatingIp).where(FloatingIp.fixed_ip_id.in_(list(
            fixed_ids))).values(fixed_ip_id=None, host=None, updated_at=utcnow())
            .execution_options(synchronize_session=False))
        await s.execute(update(FixedIp).where(FixedIp.id.in_(list(fixed_ids))).values(
            instance_uuid=None, virtual_interface_id=None, allocated=False, leased=False,
            host=None, updated_at=utcnow()).execution_options(synchronize_session=False))


async def delete_unbound_port(db: Database, port_uuid: str) -> PortRow:
    """Delete a port bound to no server and free its address (PortBound when it is
    a server's NIC: those go through the server)."""
    async with db.transaction() as s:
        row = await _port(s, port_uuid)
        vif = (await s.execute(select(VirtualInterface).where(
            VirtualInterface.id == row.vif.id).with_for_update())).scalar_one()
        if vif.instance_uuid is not None:
            raise PortBound(port_id=port_uuid, instance_uuid=vif.instance_uuid)
        fixed_ids = list((await s.execute(select(FixedIp.id).where(
            FixedIp.virtual_interface_id == vif.id))).scalars())
        if fixed_ids:  # its floating IPs (an unbound port may hold some) let go
            await s.execute(update(FloatingIp).where(FloatingIp.fixed_ip_id.in_(
                fixed_ids)).values(fixed_ip_id=None, host=None, updated_at=utcnow())
                .execution_options(synchronize_session=False))
        await _free(s, fixed_ids)
        await tags.forget(s, "ports", [vif.uuid])
        await s.execute(delete(VirtualInterface).where(VirtualInterface.id == vif.id))
        return row



# --- servers on ports (network/api.py) ---------------------------------------------

async def check_bindable(db: Database, project_id: str, port_uuids: Sequence[str],
                         vlan_mode: bool = False) -> None:
    """PortNotFound unless each port exists and is the project's; PortBound when a
    server has it already; PortNetworkNotUsable when its network is another's now."""
    async with db.transaction() as s:
        for port_uuid in port_uuids:
            row = await _port(s, port_uuid)
            if row.project_id != project_id:
                raise PortNotFound(port_id=port_uuid)
            if row.vif.instance_uuid is not None:
                raise PortBound(port_id=port_uuid, instance_uuid=row.vif.instance_uuid)
            if not usable_by(row.network, project_id, vlan_mode):
                raise PortNetworkNotUsable(port_id=port_uuid, net_id=row.network.uuid)


async def bind_ports(db: Database, instance_uuid: str, project_id: str, host: str | None,
                     port_uuids: Sequence[str], vlan_mode: bool = False) -> list[str]:
    """Make the ports the instance's NICs (their addresses its fixed IPs on `host`),
    all or none, each by compare-and-swap on being bound to nothing; the group uuids
    they carried, which become the instance's."""
    groups: list[str] = []
    async with db.transaction() as s:
        for port_uuid in port_uuids:
            port = await _port(s, port_uuid)
            if not usable_by(port.network, project_id, vlan_mode):
                raise PortNetworkNotUsable(port_id=port_uuid, net_id=port.network.uuid)
            carried = port.vif.security_groups or []
            taken = await s.execute(update(VirtualInterface).where(
                VirtualInterface.uuid == port_uuid, VirtualInterface.instance_uuid.is_(None),
                VirtualInterface.project_id == project_id).values(
                instance_uuid=instance_uuid, updated_at=utcnow())
                .execution_options(synchronize_session=False))
            if rows_matched(taken) != 1:
                raise PortBound(port_id=port_uuid, instance_uuid="another server")
            await s.execute(update(VirtualInterface).where(
                VirtualInterface.uuid == port_uuid).values(
                security_groups=await port_groups.bind(s, instance_uuid, carried)))
            row = await _port(s, port_uuid)
            groups += [g for g in carried if g not in groups]
            await s.execute(update(FixedIp).where(
                FixedIp.virtual_interface_id == row.vif.id).values(
                instance_uuid=instance_uuid, host=host, updated_at=utcnow())
                .execution_options(synchronize_session=False))
    return groups
