"""Database access for nova-network style networking: networks with one row per
address, virtual interfaces, floating IPs and security groups.

Addresses are handed out by compare-and-swap: an UPDATE that only matches while
the row is still free, retried on another row when a concurrent allocator won
it. So two boots never get the same address, on SQLite or on a server database.
"""

from __future__ import annotations

import ipaddress
import random
import secrets
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db import migrations_records
from novalet.db import quotas as db_quotas
from novalet.db import security_groups as db_groups
from novalet.db import external_networks, port_groups, subnet_pools
from novalet.db import floating_ips as db_floating
from novalet.db import tags
from novalet.db.engine import Database, rows_matched
from novalet.db.models import (FixedIp, FloatingIp, Instance, Migration, Network, SecurityGroup,
                               SecurityGroupInstance, Subnet, VirtualInterface)

# Enough for every contender of a boot storm to find its own row.
_CAS_ATTEMPTS = 64
_MAC_ATTEMPTS = 16
_CANDIDATES = 16


# --- errors -----------------------------------------------------------------

class NetworkNotFound(exceptions.NotFound):
    msg_fmt = "Network %(network_id)s could not be found."


class NetworkInUse(exceptions.Conflict):
    msg_fmt = "Network %(network_id)s is still in use."


class CidrConflict(exceptions.Conflict):
    msg_fmt = "Requested cidr (%(cidr)s) conflicts with existing cidr (%(other)s)"


class DuplicateVlan(exceptions.Conflict):
    msg_fmt = "Detected existing vlan with id %(vlan)d"


class NoMoreFixedIps(exceptions.Conflict):
    msg_fmt = "No fixed IP addresses available for network: %(net)s"


class FixedIpNotFoundForAddress(exceptions.NotFound):
    msg_fmt = "Fixed IP not found for address %(address)s."


class FixedIpUnavailable(exceptions.Invalid):
    msg_fmt = ("Fixed IP address %(address)s is not available in network %(net)s: it is "
               "outside the network, reserved or in use.")


class HostAddressInUse(exceptions.Conflict):
    msg_fmt = ("Fixed IP address %(address)s is host %(host)s's own address on its "
               "multi_host network; it stays reserved while the network exists.")


class FloatingIpNotFound(exceptions.NotFound):
    msg_fmt = "Floating IP not found for ID %(id)s"


class FloatingIpNotFoundForAddress(exceptions.NotFound):
    msg_fmt = "Floating IP not found for address %(address)s."


class NoMoreFloatingIps(exceptions.NotFound):
    msg_fmt = "No more floating IPs in pool %(pool)s."


# --- joined reads -----------------------------------------------------------

@dataclass
class InterfaceRow:
    """One guest NIC as stored: the interface, its network, its fixed IP and the
    floating IPs NATed to that fixed IP (detached rows)."""

    vif: VirtualInterface
    network: Network
    fixed_ip: FixedIp | None
    floating_ips: list[str] = field(default_factory=list)
    # multi_host: the address of the host the NIC is on (the guest's gateway there)
    host_address: str | None = None


@dataclass(frozen=True)
class FloatingRow:
    floating: FloatingIp
    fixed_address: str | None
    instance_uuid: str | None


@dataclass(frozen=True)
class FixedRow:
    fixed: FixedIp
    cidr: str
    hostname: str | None
    host: str | None


@dataclass(frozen=True)
class AddressRow:
    """One address of a server as its views show it."""

    instance_uuid: str
    label: str
    mac: str
    address: str
    kind: str  # "fixed" or "floating"


@dataclass(frozen=True)
class HostInstance:
    uuid: str
    project_id: str
    hostname: str


@dataclass
class HostSnapshot:
    """Every row one host's networking is built from, read in one transaction."""

    networks: list[Network]
    instances: list[HostInstance]
    interfaces: dict[str, list[InterfaceRow]]
    groups: dict[str, list[SecurityGroup]]
    member_ips: dict[int, list[str]]
    # network id -> [(mac, address, hostname)]
    dhcp_hosts: dict[int, list[tuple[str, str, str]]]
    # (floating address, fixed address, interface)
    floating: list[tuple[str, str, str | None]]
    # multi_host network id -> this host's own address on it
    own_addresses: dict[int, str] = field(default_factory=dict)


def random_mac() -> str:
    """A MAC in the fa:16:3e OpenStack prefix with three random bytes."""
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


# --- networks ---------------------------------------------------------------

NetworkPlan = Callable[[list[Network]], tuple[dict[str, Any], Sequence[tuple[str, bool]]]]


async def create_network(db: Database, plan: NetworkPlan, for_project: str | None = None
                         ) -> Network:
    """Insert the network `plan` makes from the existing ones: its column values and
    a fixed_ips row per (address, reserved). The plan runs inside the transaction,
    so what it picks (a free subnet, a free VLAN) is still free at insert.

    for_project: return the project's network if it has one, else claim an
    unassigned VLAN network for it, and only then create one.
    CidrConflict when the CIDR overlaps a network; DuplicateVlan when the VLAN is taken.
    """
    values: dict[str, Any] = {}
    try:
        async with db.transaction() as s:
            # Locks the rows on server databases, so concurrent planners queue up.
            existing = list((await s.execute(select(Network).order_by(
                Network.id).with_for_update())).scalars())
            if for_project is not None:
                own = [n for n in existing if n.project_id == for_project and n.cidr]
                if own:
                    return own[0]
                held = set((await s.execute(_foreign_ports(for_project))).scalars())
                free = [n for n in existing if n.project_id is None and n.vlan is not None
                        and n.cidr and n.id not in held]
                if free:
                    free[0].project_id = for_project
                    await _subnets_follow(s, free[0].id, for_project)
                    return free[0]
            values, addresses = plan(existing)
            wanted = ipaddress.ip_network(values["cidr"])
            for other in existing:
                if other.cidr is not None and ipaddress.ip_network(other.cidr).overlaps(wanted):
                    raise CidrConflict(cidr=values["cidr"], other=other.cidr)
                if values.get("vlan") is not None and other.vlan == values["vlan"]:
                    raise DuplicateVlan(vlan=values["vlan"])
            network = Network(uuid=str(uuidlib.uuid4()), **values)
            s.add(network)
            await s.flush()
            now = utcnow()
            await s.execute(insert(FixedIp), [
                {"address": address, "network_id": network.id, "reserved": reserved,
                 "allocated": False, "leased": False, "created_at": now}
                for address, reserved in addresses])
            s.add(subnet_pools.mirror_subnet(network, addresses))  # its Neutron face
            return network
    except IntegrityError:
        # A concurrent creator took the same CIDR or VLAN between our check and insert.
        if values.get("vlan") is not None:
            raise DuplicateVlan(vlan=values["vlan"]) from None
        raise CidrConflict(cidr=values.get("cidr"), other=values.get("cidr")) from None


async def get_network(db: Database, network_uuid: str) -> Network:
    async with db.transaction() as s:
        network = (await s.execute(select(Network).where(
            Network.uuid == network_uuid))).scalar_one_or_none()
    if network is None:
        raise NetworkNotFound(network_id=network_uuid)
    return network


async def list_networks(db: Database, visible_to: str | None = None) -> list[Network]:
    """Every guest network, or (visible_to=project) the project's and the unassigned
    ones. Not the external ones: nova-network shows them as floating IP pools."""
    query = select(Network).where(Network.external.is_(False)).order_by(Network.id)
    if visible_to is not None:
        query = query.where((Network.project_id == visible_to) | Network.project_id.is_(None))
    async with db.transaction() as s:
        return list((await s.execute(query)).scalars())


async def project_networks(db: Database, project_id: str) -> list[Network]:
    async with db.transaction() as s:
        return list((await s.execute(select(Network).where(
            Network.project_id == project_id).order_by(Network.id))).scalars())


async def claim_network(db: Database, project_id: str, network_uuid: str | None = None
                        ) -> Network | None:
    """Give project_id an unassigned network: the one named, else the oldest.
    None when there is none left (or the named one is taken)."""
    async with db.transaction() as s:
        for _ in range(_CAS_ATTEMPTS):
            query = select(Network.id).where(Network.project_id.is_(None),
                                             Network.external.is_(False),
                                             Network.id.not_in(_foreign_ports(project_id))
                                             ).order_by(
                Network.id).limit(1)
            if network_uuid is not None:
                query = query.where(Network.uuid == network_uuid)
            network_id = (await s.execute(query)).scalar_one_or_none()
            if network_id is None:
                return None
            claimed = await s.execute(update(Network).where(
                Network.id == network_id, Network.project_id.is_(None)).values(
                project_id=project_id, updated_at=utcnow()).execution_options(
                synchronize_session=False))
            if rows_matched(claimed) == 1:
                await _subnets_follow(s, network_id, project_id)
                return await _network_by_id(s, network_id)
    return None


def _foreign_ports(project_id: str) -> Any:
    """Networks holding another project's ports: never claimed (its port would land there)."""
    return select(VirtualInterface.network_id).where(VirtualInterface.project_id != project_id)


async def set_network_fields(db: Database, network_uuid: str, values: dict[str, Any]) -> None:
    async with db.transaction() as s:
        result = await s.execute(update(Network).where(Network.uuid == network_uuid).values(
            **values, updated_at=utcnow()).execution_options(synchronize_session=False))
        if "project_id" in values:
            await _subnets_follow(s, select(Network.id).where(
                Network.uuid == network_uuid).scalar_subquery(), values["project_id"])
    if rows_matched(result) == 0:
        raise NetworkNotFound(network_id=network_uuid)


async def _subnets_follow(s: AsyncSession, network_id: Any, project_id: str | None) -> None:
    """A network's mirror subnet belongs to whom the network belongs (claimed by or
    taken back from a project), so the network API shows and scopes it alike."""
    await s.execute(update(Subnet).where(Subnet.network_id == network_id).values(
        project_id=project_id).execution_options(synchronize_session=False))


async def delete_network(db: Database, network_uuid: str) -> None:
    """Delete a network and its addresses; NetworkInUse while it belongs to a
    project or any of its addresses is allocated."""
    async with db.transaction() as s:
        network = (await s.execute(select(Network).where(
            Network.uuid == network_uuid))).scalar_one_or_none()
        if network is None:
            raise NetworkNotFound(network_id=network_uuid)
        if network.project_id is not None:
            raise NetworkInUse(network_id=network_uuid)
        allocated = (await s.execute(select(func.count(FixedIp.id)).where(
            FixedIp.network_id == network.id,
            FixedIp.allocated.is_(True) | FixedIp.instance_uuid.is_not(None)))).scalar_one()
        if allocated or await external_networks.allocated_floating(s, network.id):
            raise NetworkInUse(network_id=network_uuid)
        await external_networks.drop_floating_rows(s, network.id)
        await s.execute(delete(FixedIp).where(FixedIp.network_id == network.id))
        await tags.forget(s, "subnets", select(Subnet.uuid).where(Subnet.network_id == network.id))
        await s.execute(delete(Subnet).where(Subnet.network_id == network.id))
        await tags.forget(s, "ports", select(VirtualInterface.uuid).where(
            VirtualInterface.network_id == network.id))
        await s.execute(delete(VirtualInterface).where(
            VirtualInterface.network_id == network.id))
        await tags.forget(s, "networks", [network.uuid])
        await s.delete(network)


async def _network_by_id(s: AsyncSession, network_id: int) -> Network:
    return (await s.execute(select(Network).where(Network.id == network_id).execution_options(
        populate_existing=True))).scalar_one()


# --- interfaces and fixed IPs --------------------------------------------------

async def allocate_interface(db: Database, instance_uuid: str, network_id: int, host: str | None,
                             address: str | None = None) -> InterfaceRow:
    """A new virtual interface with a unique MAC on the network and a free fixed IP
    (the one asked for, or the least recently used) bound to it, in one transaction."""
    async with db.transaction() as s:
        vif = await _new_vif(s, instance_uuid, network_id)
        fixed = await _claim_fixed_ip(s, network_id, instance_uuid, vif.id, host, address)
        network = await _network_by_id(s, network_id)
        own = await _ensure_host_address(s, network, host)
    return InterfaceRow(vif, network, fixed, host_address=own)


async def _new_vif(s: AsyncSession, instance_uuid: str, network_id: int) -> VirtualInterface:
    for _ in range(_MAC_ATTEMPTS):
        mac = random_mac()
        taken = (await s.execute(select(VirtualInterface.id).where(
            VirtualInterface.address == mac))).first()
        if taken:
            continue
        vif = VirtualInterface(uuid=str(uuidlib.uuid4()), address=mac,
                               instance_uuid=instance_uuid, network_id=network_id)
        try:
            async with s.begin_nested():
                s.add(vif)
        except IntegrityError:
            continue  # a concurrent allocator took the MAC after our check
        return vif
    raise exceptions.Conflict(reason="could not find a free MAC address")


async def _claim_fixed_ip(s: AsyncSession, network_id: int, instance_uuid: str, vif_id: int,
                          host: str | None, address: str | None) -> FixedIp:
    chosen = await _claim_free_address(s, network_id, address, instance_uuid=instance_uuid,
                                       virtual_interface_id=vif_id, allocated=True, host=host)
    if chosen is None:
        if address is not None:
            raise FixedIpUnavailable(address=address, net=network_id)
        raise NoMoreFixedIps(net=network_id)
    fixed: FixedIp = (await s.execute(select(FixedIp).where(
        FixedIp.id == chosen).execution_options(populate_existing=True))).scalar_one()
    return fixed


async def _claim_free_address(s: AsyncSession, network_id: int, address: str | None,
                              **values: Any) -> int | None:
    """Set `values` on a free address of the network (`address`, if given) by
    compare-and-swap; its row id, or None when none is free."""
    free = (FixedIp.network_id == network_id, FixedIp.instance_uuid.is_(None),
            FixedIp.reserved.is_(False), FixedIp.allocated.is_(False))
    query = select(FixedIp.id).where(*free, FixedIp.leased.is_(False))
    if address is not None:
        query = query.where(FixedIp.address == address)
    # Never-used addresses first, then the longest free: a released address is not
    # handed out again while others are free (stale ARP and DHCP state fades first).
    query = query.order_by(FixedIp.updated_at.is_not(None), FixedIp.updated_at,
                           FixedIp.id).limit(_CANDIDATES)
    for attempt in range(_CAS_ATTEMPTS):
        candidates = list((await s.execute(query)).scalars())
        if not candidates:
            return None
        # The first choice keeps addresses in order; after losing a race, spread out
        # so that contenders stop fighting over the same row.
        chosen = candidates[0] if attempt == 0 else random.choice(candidates)
        claimed = await s.execute(update(FixedIp).where(FixedIp.id == chosen, *free).values(
            **values, updated_at=utcnow()).execution_options(synchronize_session=False))
        if rows_matched(claimed) == 1:
            return chosen
    return None


# A host's own address on a multi_host network: reserved, bound to no instance.
def _is_host_address() -> tuple[Any, ...]:
    return (FixedIp.host.is_not(None), FixedIp.reserved.is_(True),
            FixedIp.instance_uuid.is_(None))


async def _ensure_host_address(s: AsyncSession, network: Network, host: str | None
                               ) -> str | None:
    """multi_host: the address `host` serves the network from (its bridge's, and the
    gateway and DHCP server of its guests there), taken from the network's free
    addresses on first use and kept while the network lives. None otherwise."""
    if not network.multi_host or not host:
        return None
    own = await _host_addresses(s, [network.id], host)
    if network.id not in own:
        if await _claim_free_address(s, network.id, None, reserved=True, host=host) is None:
            raise NoMoreFixedIps(net=network.label)
        own = await _host_addresses(s, [network.id], host)
    return own[network.id]


async def _host_addresses(s: AsyncSession, network_ids: Sequence[int], host: str
                          ) -> dict[int, str]:
    """network id -> `host`'s own address there. Two allocators racing may both
    reserve one: the lowest row wins, everywhere, and the other stays unused."""
    rows = (await s.execute(select(FixedIp.network_id, FixedIp.address).where(
        FixedIp.network_id.in_(list(network_ids)), FixedIp.host == host,
        *_is_host_address()).order_by(FixedIp.id.desc()))).all()
    return {network_id: address for network_id, address in rows}


async def interfaces(db: Database, instance_uuids: Sequence[str]
                     ) -> dict[str, list[InterfaceRow]]:
    """Each instance's NICs in creation order."""
    async with db.transaction() as s:
        return await _interfaces(s, instance_uuids)


async def _interfaces(s: AsyncSession, instance_uuids: Sequence[str]
                      ) -> dict[str, list[InterfaceRow]]:
    result: dict[str, list[InterfaceRow]] = defaultdict(list)
    if not instance_uuids:
        return result
    rows = (await s.execute(
        select(VirtualInterface, Network, FixedIp)
        .join(Network, Network.id == VirtualInterface.network_id)
        .outerjoin(FixedIp, FixedIp.virtual_interface_id == VirtualInterface.id)
        .where(VirtualInterface.instance_uuid.in_(list(instance_uuids)))
        .order_by(VirtualInterface.id))).all()
    by_fixed: dict[int, InterfaceRow] = {}
    for vif, network, fixed in rows:
        row = InterfaceRow(vif, network, fixed)
        result[str(vif.instance_uuid)].append(row)  # selected by instance: never None
        if fixed is not None:
            by_fixed[fixed.id] = row
    await _fill_host_addresses(s, [r for rs in result.values() for r in rs])
    if by_fixed:
        for fixed_id, address in (await s.execute(
                select(FloatingIp.fixed_ip_id, FloatingIp.address)
                .where(FloatingIp.fixed_ip_id.in_(list(by_fixed)))
                .order_by(FloatingIp.id))).all():
            if fixed_id is not None:
                by_fixed[fixed_id].floating_ips.append(address)
    return result


async def _fill_host_addresses(s: AsyncSession, rows: list[InterfaceRow]) -> None:
    by_host: dict[str, list[InterfaceRow]] = defaultdict(list)
    for row in rows:
        if row.network.multi_host and row.fixed_ip is not None and row.fixed_ip.host:
            by_host[row.fixed_ip.host].append(row)
    for host, host_rows in by_host.items():
        own = await _host_addresses(s, sorted({r.network.id for r in host_rows}), host)
        for row in host_rows:
            row.host_address = own.get(row.network.id)


async def addresses(db: Database, instance_uuids: Sequence[str]) -> list[AddressRow]:
    """Every fixed and floating address of the instances, in one query: what server
    views show. Fixed addresses come before floating ones of the same NIC."""
    if not instance_uuids:
        return []
    query = (select(VirtualInterface.instance_uuid, Network.label, VirtualInterface.address,
                    FixedIp.address, FloatingIp.address)
             .join(Network, Network.id == VirtualInterface.network_id)
             .join(FixedIp, FixedIp.virtual_interface_id == VirtualInterface.id)
             .outerjoin(FloatingIp, FloatingIp.fixed_ip_id == FixedIp.id)
             .where(VirtualInterface.instance_uuid.in_(list(instance_uuids)))
             .order_by(VirtualInterface.id, FloatingIp.id))
    async with db.transaction() as s:
        rows = (await s.execute(query)).all()
    result: list[AddressRow] = []
    seen_fixed: set[tuple[str, str]] = set()
    for bound_to, label, mac, fixed, floating in rows:
        instance_uuid = str(bound_to)  # selected by instance: never None
        if (instance_uuid, fixed) not in seen_fixed:
            seen_fixed.add((instance_uuid, fixed))
            result.append(AddressRow(instance_uuid, label, mac, fixed, "fixed"))
        if floating is not None:
            result.append(AddressRow(instance_uuid, label, mac, floating, "floating"))
    return result


async def deallocate_instance(db: Database, instance_uuid: str) -> list[InterfaceRow]:
    """Release everything networking holds for an instance: its fixed IPs, NICs,
    floating associations (auto-assigned floating IPs go back to their pool, the
    others stay with the project) and security group memberships. Returns the NICs
    as they were."""
    async with db.transaction() as s:
        rows = [r for rs in (await _interfaces(s, [instance_uuid])).values() for r in rs]
        await _release(s, rows)
        await s.execute(delete(SecurityGroupInstance).where(
            SecurityGroupInstance.instance_uuid == instance_uuid))
    return rows


async def deallocate_interface(db: Database, instance_uuid: str, vif_uuid: str
                               ) -> InterfaceRow | None:
    """Release one NIC of an instance as deallocate_instance releases them all (its
    group memberships stay); None when the instance has no such NIC."""
    async with db.transaction() as s:
        rows = [r for r in (await _interfaces(s, [instance_uuid])).get(instance_uuid, [])
                if r.vif.uuid == vif_uuid]
        if not rows:
            return None
        await _release(s, rows)
    return rows[0]


async def _release(s: AsyncSession, rows: list[InterfaceRow]) -> None:
    """Detach the rows' floating IPs (auto-assigned ones go back to their pool), free
    their fixed IPs and delete their interfaces; ports the user made are unbound
    instead. (An address is claimed together with its interface, so an instance
    holds no fixed IP outside its rows.)"""
    fixed_ids = [r.fixed_ip.id for r in rows if r.fixed_ip is not None]
    kept = [r for r in rows if r.vif.preserve_on_delete]
    if fixed_ids:
        await tags.forget(s, "floatingips", select(FloatingIp.uuid).where(  # released below
            FloatingIp.fixed_ip_id.in_(fixed_ids), FloatingIp.auto_assigned.is_(True)))
        await s.execute(update(FloatingIp).where(
            FloatingIp.fixed_ip_id.in_(fixed_ids), FloatingIp.auto_assigned.is_(True)
        ).values(project_id=None, auto_assigned=False, fixed_ip_id=None, host=None,
                 updated_at=utcnow()).execution_options(synchronize_session=False))
        await s.execute(update(FloatingIp).where(  # a kept port keeps its (as Neutron)
            FloatingIp.fixed_ip_id.in_([r.fixed_ip.id for r in rows if r.fixed_ip is not None
                                        and r not in kept])).values(
            fixed_ip_id=None, host=None, updated_at=utcnow()).execution_options(
            synchronize_session=False))
    await _unbind(s, kept)
    fixed_ids = [r.fixed_ip.id for r in rows if r.fixed_ip is not None and r not in kept]
    await s.execute(update(FixedIp).where(FixedIp.id.in_(fixed_ids)).values(
        instance_uuid=None, virtual_interface_id=None, allocated=False, leased=False,
        host=None, updated_at=utcnow()).execution_options(synchronize_session=False))
    await tags.forget(s, "ports", [r.vif.uuid for r in rows if r not in kept])
    await s.execute(delete(VirtualInterface).where(
        VirtualInterface.id.in_([r.vif.id for r in rows if r not in kept])))


async def _unbind(s: AsyncSession, rows: list[InterfaceRow]) -> None:
    """A port the user made (network API) outlives the server: it goes back to being
    bound to nothing, keeping its address and its own groups; the server loses the
    groups its binding added (db/port_groups.py)."""
    for row in rows:
        groups = await port_groups.unbind(s, row.vif, row.vif.instance_uuid or "")
        await s.execute(update(VirtualInterface).where(VirtualInterface.id == row.vif.id).values(
            instance_uuid=None, security_groups=groups, updated_at=utcnow()))
        await s.execute(update(FixedIp).where(FixedIp.virtual_interface_id == row.vif.id).values(
            instance_uuid=None, host=None, leased=False, updated_at=utcnow())
            .execution_options(synchronize_session=False))


async def set_interfaces_host(db: Database, instance_uuid: str, host: str | None) -> None:
    """Record the host an instance's fixed IPs live on (after a reschedule or move);
    the host gets its own address on the instance's multi_host networks."""
    async with db.transaction() as s:
        await s.execute(update(FixedIp).where(FixedIp.instance_uuid == instance_uuid).values(
            host=host, updated_at=utcnow()).execution_options(synchronize_session=False))
        networks = (await s.execute(select(Network).join(
            VirtualInterface, VirtualInterface.network_id == Network.id).where(
            VirtualInterface.instance_uuid == instance_uuid))).scalars().unique()
        for network in networks:
            await _ensure_host_address(s, network, host)


async def fixed_ip_by_address(db: Database, address: str) -> FixedRow:
    query = (select(FixedIp, Network.cidr, Instance.hostname, Instance.host)
             .join(Network, Network.id == FixedIp.network_id)
             .outerjoin(Instance, and_(Instance.uuid == FixedIp.instance_uuid,
                                       Instance.deleted.is_(False)))
             .where(FixedIp.address == address))
    async with db.transaction() as s:
        row = (await s.execute(query)).first()
    if row is None:
        raise FixedIpNotFoundForAddress(address=address)
    return FixedRow(row[0], row[1] or "", row[2], row[3])  # a fixed IP's network has a cidr


async def set_fixed_ip_reserved(db: Database, address: str, reserved: bool) -> None:
    """Reserve or unreserve an address; a host's own address (multi_host) stays
    reserved while the network lives."""
    async with db.transaction() as s:
        owner = (await s.execute(select(FixedIp.host).where(
            FixedIp.address == address, *_is_host_address()))).scalar_one_or_none()
        if owner is not None and not reserved:
            raise HostAddressInUse(address=address, host=owner)
        result = await s.execute(update(FixedIp).where(FixedIp.address == address).values(
            reserved=reserved, updated_at=utcnow()).execution_options(synchronize_session=False))
    if rows_matched(result) == 0:
        raise FixedIpNotFoundForAddress(address=address)


# --- floating IPs -------------------------------------------------------------

async def add_floating_addresses(db: Database, pool: str, addresses: Iterable[str]) -> int:
    """Add the addresses not stored yet to `pool`; how many were new."""
    wanted = list(addresses)
    try:
        async with db.transaction() as s:
            existing = set((await s.execute(select(FloatingIp.address).where(
                FloatingIp.address.in_(wanted)))).scalars())
            new = [a for a in wanted if a not in existing]
            if new:
                now = utcnow()
                await s.execute(insert(FloatingIp), [
                    {"address": a, "pool": pool, "auto_assigned": False, "created_at": now}
                    for a in new])
            return len(new)
    except IntegrityError:
        return 0  # another process created the pool at the same moment


async def floating_pools(db: Database) -> list[str]:
    async with db.transaction() as s:
        return list((await s.execute(select(FloatingIp.pool).distinct().order_by(
            FloatingIp.pool))).scalars())


async def allocate_floating_ip(db: Database, project_id: str, pool: str,
                               auto_assigned: bool = False,
                               admit: db_quotas.Admission[None] | None = None) -> FloatingIp:
    """Give project_id a free address of `pool` (compare-and-swap, retried); with
    `admit`, the floating_ips quota decides first, under the project's quota lock."""
    free = (FloatingIp.pool == pool, FloatingIp.project_id.is_(None),
            FloatingIp.fixed_ip_id.is_(None), FloatingIp.router_id.is_(None))
    query = select(FloatingIp.id).where(*free).order_by(
        FloatingIp.updated_at.is_not(None), FloatingIp.updated_at, FloatingIp.id
    ).limit(_CANDIDATES)
    async with db.transaction() as s:
        if admit is not None:
            await db_quotas.admit_locked(s, project_id, None, admit)
        for attempt in range(_CAS_ATTEMPTS):
            candidates = list((await s.execute(query)).scalars())
            if not candidates:
                break
            chosen = candidates[0] if attempt == 0 else random.choice(candidates)
            claimed = await s.execute(update(FloatingIp).where(
                FloatingIp.id == chosen, *free).values(
                project_id=project_id, auto_assigned=auto_assigned,
                uuid=str(uuidlib.uuid4()),  # a new floating IP to the network API
                updated_at=utcnow()).execution_options(synchronize_session=False))
            if rows_matched(claimed) == 1:
                return (await s.execute(select(FloatingIp).where(
                    FloatingIp.id == chosen).execution_options(
                    populate_existing=True))).scalar_one()
    raise NoMoreFloatingIps(pool=pool)


def _floating_query() -> Any:
    return (select(FloatingIp, FixedIp.address, FixedIp.instance_uuid)
            .outerjoin(FixedIp, FixedIp.id == FloatingIp.fixed_ip_id)
            .order_by(FloatingIp.id))


async def get_floating_ip(db: Database, floating_id: int) -> FloatingRow:
    async with db.transaction() as s:
        row = (await s.execute(_floating_query().where(FloatingIp.id == floating_id))).first()
    if row is None:
        raise FloatingIpNotFound(id=floating_id)
    return FloatingRow(*row)


async def get_floating_ip_by_address(db: Database, address: str) -> FloatingRow:
    async with db.transaction() as s:
        row = (await s.execute(_floating_query().where(FloatingIp.address == address))).first()
    if row is None:
        raise FloatingIpNotFoundForAddress(address=address)
    return FloatingRow(*row)


async def list_floating_ips(db: Database, project_id: str) -> list[FloatingRow]:
    async with db.transaction() as s:
        rows = (await s.execute(_floating_query().where(
            FloatingIp.project_id == project_id))).all()
    return [FloatingRow(*row) for row in rows]


async def associate_floating_ip(db: Database, floating_id: int, fixed_ip_id: int,
                                host: str | None, interface: str | None, *,
                                owner: str | None = None, old_fixed_ip_id: int | None = None,
                                exclusive: bool = False) -> None:
    """NAT the floating IP to the fixed IP as a compare-and-swap (db/floating_ips.associate)."""
    await db_floating.associate(db, floating_id, fixed_ip_id, host, interface, owner=owner,
                                old_fixed_ip_id=old_fixed_ip_id, exclusive=exclusive)


async def disassociate_floating_ip(db: Database, floating_id: int, *, owner: str | None = None,
                                   fixed_ip_id: int | None = None) -> bool:
    """Detach from its fixed IP (only while `owner` holds it and it NATs to fixed_ip_id,
    when given); False when it was not associated so."""
    return await db_floating.detach(db, floating_id, owner, fixed_ip_id)


async def release_floating_ip(db: Database, floating_id: int, *, owner: str | None = None
                              ) -> bool:
    """Return an unassociated floating IP (held by `owner`, when given) to its pool;
    False when it was not held so."""
    return await db_floating.release(db, floating_id, owner)


# --- hosts ----------------------------------------------------------------------

async def project_hosts(db: Database, project_id: str) -> set[str]:
    """Hosts running a live instance of the project."""
    async with db.transaction() as s:
        rows = (await s.execute(select(Instance.host).distinct().where(
            Instance.project_id == project_id, Instance.deleted.is_(False),
            Instance.host.is_not(None)))).scalars()
        return {host for host in rows if host}


async def instance_host(db: Database, instance_uuid: str) -> str | None:
    async with db.transaction() as s:
        return (await s.execute(select(Instance.host).where(
            Instance.uuid == instance_uuid))).scalar_one_or_none()


async def instance_owner(db: Database, instance_uuid: str) -> tuple[str, str | None] | None:
    """(project id, host) of an instance, deleted or not; None when there is no row."""
    async with db.transaction() as s:
        row = (await s.execute(select(Instance.project_id, Instance.host).where(
            Instance.uuid == instance_uuid))).first()
    return (row[0], row[1]) if row is not None else None


async def host_snapshot(db: Database, host: str) -> HostSnapshot:
    """What one host serves, read in one transaction: every network that is not
    multi_host (with all its guests' DHCP entries and floating IPs), and the
    multi_host networks its own instances are on (with only theirs). Its instances
    are those recorded on it and those with a move under way to or from it (their
    NICs are plugged and firewalled at both ends while the guest moves; DHCP and
    floating IPs follow the record). Not an evacuation's: its source failed, and what
    still runs there is quarantined."""
    moving = select(Migration.instance_uuid).where(
        Migration.status.in_(migrations_records.IN_PROGRESS),
        Migration.migration_type != "evacuation",
        or_(Migration.source_compute == host, Migration.dest_compute == host))
    async with db.transaction() as s:
        instances = [HostInstance(*row) for row in (await s.execute(
            select(Instance.uuid, Instance.project_id, Instance.hostname).where(
                or_(Instance.host == host, Instance.uuid.in_(moving)),
                Instance.deleted.is_(False)).order_by(Instance.id))).all()]
        uuids = [i.uuid for i in instances]
        nics = dict(await _interfaces(s, uuids))
        instances = [i for i in instances if i.uuid in nics]
        groups = dict(await db_groups.groups_of_instances(s, [i.uuid for i in instances]))
        sources = {rule.group_id for gs in groups.values() for g in gs for rule in g.rules
                   if rule.group_id is not None}
        member_ips: dict[int, list[str]] = defaultdict(list)
        if sources:
            for group_id, address in (await s.execute(
                    select(SecurityGroupInstance.security_group_id, FixedIp.address)
                    .join(FixedIp, FixedIp.instance_uuid == SecurityGroupInstance.instance_uuid)
                    .where(SecurityGroupInstance.security_group_id.in_(list(sources)),
                           FixedIp.allocated.is_(True))
                    .order_by(FixedIp.id))).all():
                member_ips[group_id].append(address)
        networks = list((await s.execute(  # a network without a subnet is served nowhere
            select(Network).where(Network.cidr.is_not(None), Network.external.is_(False))
            .order_by(Network.id))).scalars())  # nor an external one: floating IPs only
        used = {row.network.id for rows in nics.values() for row in rows}
        networks = [n for n in networks if not n.multi_host or n.id in used]
        own_addresses = await _host_addresses(s, [n.id for n in networks if n.multi_host], host)
        here = Network.multi_host.is_(False) | (Instance.host == host)
        dhcp_query = (select(FixedIp.network_id, VirtualInterface.address, FixedIp.address,
                             Instance.hostname)
                      .join(VirtualInterface, VirtualInterface.id == FixedIp.virtual_interface_id)
                      .join(Instance, Instance.uuid == FixedIp.instance_uuid)
                      .join(Network, Network.id == FixedIp.network_id)
                      .where(Instance.deleted.is_(False), here,
                             FixedIp.network_id.in_([n.id for n in networks]))
                      .order_by(FixedIp.id))
        floating_query = (select(FloatingIp.address, FixedIp.address, FloatingIp.interface)
                          .join(FixedIp, FixedIp.id == FloatingIp.fixed_ip_id)
                          .join(Instance, Instance.uuid == FixedIp.instance_uuid)
                          .join(Network, Network.id == FixedIp.network_id)
                          .where(Instance.deleted.is_(False), here)
                          .order_by(FloatingIp.id))
        dhcp: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
        for network_id, mac, address, hostname in (await s.execute(dhcp_query)).all():
            dhcp[network_id].append((mac, address, hostname))
        floating = [(f, x, i) for f, x, i in (await s.execute(floating_query)).all()]
    return HostSnapshot(networks, instances, nics, groups, dict(member_ips), dict(dhcp),
                        floating, own_addresses)
