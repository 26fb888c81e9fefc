"""Database access for subnets and their mirror: a network's one IPv4 subnet is
also its L3 columns (cidr, gateway, netmask, broadcast, dhcp_start, dns1/2,
enable_dhcp) and its fixed_ips rows, which IPAM, host state and the firewall read.
Each function changes the subnet and its mirror in one transaction."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db import external_networks as external
from novalet.db import network as db_network
from novalet.db import routers as db_routers
from novalet.db import tags
from novalet.db.engine import Database, rows_matched
from novalet.db.models import FixedIp, Network, Subnet
from novalet.db.subnet_pools import pooled

# The network columns that mirror its subnet; NULL while it has none.
L3_COLUMNS = ("cidr", "gateway", "netmask", "broadcast", "dhcp_start", "dns1", "dns2")

SubnetRow = tuple[Subnet, Network]
# (subnet, network) as locked -> (subnet values, network values) to write
UpdatePlan = Callable[[Subnet, Network], tuple[dict[str, Any], dict[str, Any]]]


class SubnetNotFound(exceptions.NotFound):
    msg_fmt = "Subnet %(subnet_id)s could not be found."


class NetworkHasSubnet(exceptions.Invalid):
    msg_fmt = "Network %(network_id)s has subnet %(subnet_id)s already."


class CidrOverlap(exceptions.Invalid):
    msg_fmt = "%(cidr)s overlaps %(other)s of network %(network_id)s."


class AddressesInUse(exceptions.Conflict):
    msg_fmt = "%(count)s addresses of subnet %(subnet_id)s are allocated."


class AddressInUse(exceptions.Conflict):
    msg_fmt = "%(address)s is in use by %(holder)s."


def _visible(project_id: str) -> Any:
    return or_(Subnet.project_id == project_id, Network.project_id == project_id,
               Network.project_id.is_(None), Network.shared.is_(True),
               Network.external.is_(True))


async def list_subnets(db: Database, visible_to: str | None = None) -> list[SubnetRow]:
    """Every subnet with its network, or (visible_to=project) those the project may see:
    its own, and those of its networks and of shared, external and unassigned ones."""
    query = select(Subnet, Network).join(Network, Network.id == Subnet.network_id).order_by(
        Subnet.id)
    if visible_to is not None:
        query = query.where(_visible(visible_to))
    async with db.transaction() as s:
        return [(subnet, network) for subnet, network in (await s.execute(query)).all()]


async def get_subnet(db: Database, subnet_uuid: str) -> SubnetRow:
    async with db.transaction() as s:
        return await _subnet(s, subnet_uuid)


async def network_subnets(db: Database, network_uuid: str) -> list[Subnet]:
    async with db.transaction() as s:
        return list((await s.execute(select(Subnet).join(
            Network, Network.id == Subnet.network_id).where(
            Network.uuid == network_uuid).order_by(Subnet.id))).scalars())


async def _subnet(s: AsyncSession, subnet_uuid: str, lock: bool = False) -> SubnetRow:
    query = select(Subnet, Network).join(Network, Network.id == Subnet.network_id).where(
        Subnet.uuid == subnet_uuid).execution_options(populate_existing=True)
    row = (await s.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise SubnetNotFound(subnet_id=subnet_uuid)
    return row[0], row[1]


async def create_subnet(db: Database, network_uuid: str, subnet: dict[str, Any],
                        network_values: dict[str, Any],
                        addresses: Sequence[tuple[str, bool]]) -> SubnetRow:
    """Give a network without a subnet its subnet: the subnet row, its L3 columns
    (network_values) and a fixed_ips row per (address, reserved).

    NetworkHasSubnet when it has one (a concurrent creator wins by the
    compare-and-swap on networks.cidr IS NULL); CidrOverlap when another network's
    addresses overlap: addresses are unique across the cloud (one IPAM)."""
    wanted = ipaddress.ip_network(network_values["cidr"])
    try:
        async with db.transaction() as s:
            network = (await s.execute(select(Network).where(
                Network.uuid == network_uuid).with_for_update())).scalar_one_or_none()
            if network is None:
                raise db_network.NetworkNotFound(network_id=network_uuid)
            await _check_no_subnet(s, network)
            for other in (await s.execute(select(Network).where(
                    Network.cidr.is_not(None), Network.id != network.id))).scalars():
                assert other.cidr is not None
                if ipaddress.ip_network(other.cidr).overlaps(wanted):
                    raise CidrOverlap(cidr=wanted, other=other.cidr, network_id=other.uuid)
            claimed = await s.execute(update(Network).where(
                Network.id == network.id, Network.cidr.is_(None)).values(
                **network_values, updated_at=utcnow()).execution_options(
                synchronize_session=False))
            if rows_matched(claimed) != 1:
                await _check_no_subnet(s, network)
                raise NetworkHasSubnet(network_id=network_uuid, subnet_id="?")
            now = utcnow()
            if network.external:  # its pool addresses are floating IPs, not guests'
                await external.add_floating_rows(s, network, addresses)
            else:
                await s.execute(insert(FixedIp), [
                    {"address": address, "network_id": network.id, "reserved": reserved,
                     "allocated": False, "leased": False, "created_at": now}
                    for address, reserved in addresses])
            row = Subnet(network_id=network.id, **subnet)
            s.add(row)
            await s.flush()
            return row, await _network(s, network.id)
    except IntegrityError:
        # A concurrent creator took addresses of this CIDR between our check and insert.
        raise CidrOverlap(cidr=wanted, other=wanted, network_id="?") from None


async def _check_no_subnet(s: AsyncSession, network: Network) -> None:
    existing = (await s.execute(select(Subnet.uuid).where(
        Subnet.network_id == network.id).execution_options(
        populate_existing=True))).scalars().first()
    if existing is not None or network.cidr is not None:
        raise NetworkHasSubnet(network_id=network.uuid, subnet_id=existing or "?")


async def _network(s: AsyncSession, network_id: int) -> Network:
    return (await s.execute(select(Network).where(Network.id == network_id).execution_options(
        populate_existing=True))).scalar_one()


async def update_subnet(db: Database, subnet_uuid: str, plan: UpdatePlan) -> SubnetRow:
    """Apply what `plan` makes of the locked subnet and network to both. Addresses
    that leave the allocation pools become reserved and those that join them free
    (allocated ones keep their holder); a new gateway must not be in use
    (AddressInUse)."""
    async with db.transaction() as s:
        subnet, network = await _subnet(s, subnet_uuid, lock=True)
        subnet_values, network_values = plan(subnet, network)
        gateway = subnet_values.get("gateway_ip")
        if gateway is not None and gateway != subnet.gateway_ip:
            await _check_address_free(s, network.id, gateway)
        pools = subnet_values.get("allocation_pools")
        if pools is not None and network.external:
            await external.repool_floating(s, network, subnet.allocation_pools, pools)
        elif pools is not None:
            await _repool(s, network.id, subnet.allocation_pools, pools)
        if subnet_values:
            await s.execute(update(Subnet).where(Subnet.id == subnet.id).values(
                **subnet_values, updated_at=utcnow()).execution_options(
                synchronize_session=False))
        if network_values:
            await s.execute(update(Network).where(Network.id == network.id).values(
                **network_values, updated_at=utcnow()).execution_options(
                synchronize_session=False))
        return await _subnet(s, subnet_uuid)


async def _check_address_free(s: AsyncSession, network_id: int, address: str) -> None:
    row = (await s.execute(select(FixedIp).where(
        FixedIp.network_id == network_id, FixedIp.address == address))).scalar_one_or_none()
    if row is None:
        return
    if row.instance_uuid is not None or row.allocated:
        raise AddressInUse(address=address, holder=f"instance {row.instance_uuid}")
    if row.host is not None and row.reserved:
        raise AddressInUse(address=address, holder=f"host {row.host} (multi_host)")


async def _repool(s: AsyncSession, network_id: int, old: Sequence[dict[str, str]],
                  new: Sequence[dict[str, str]]) -> None:
    rows = (await s.execute(select(FixedIp.id, FixedIp.address, FixedIp.reserved,
                                   FixedIp.host).where(FixedIp.network_id == network_id))).all()
    leave, join = [], []
    held_before, held_now = pooled(old), pooled(new)
    for row_id, address, reserved, host in rows:
        number = int(ipaddress.IPv4Address(address))
        was, now = number in held_before, number in held_now
        if was and not now and not reserved:
            leave.append(row_id)
        elif now and not was and reserved and host is None:
            join.append(row_id)
    for ids, reserved in ((leave, True), (join, False)):
        if ids:
            await s.execute(update(FixedIp).where(FixedIp.id.in_(ids)).values(
                reserved=reserved, updated_at=utcnow()).execution_options(
                synchronize_session=False))


async def delete_subnet(db: Database, subnet_uuid: str) -> SubnetRow:
    """Remove a subnet, its network's addresses and L3 columns (the network is then
    served nowhere). AddressesInUse while an address of it is allocated."""
    async with db.transaction() as s:
        subnet, network = await _subnet(s, subnet_uuid, lock=True)
        allocated = (await s.execute(select(func.count(FixedIp.id)).where(
            FixedIp.network_id == network.id,
            FixedIp.allocated.is_(True) | FixedIp.instance_uuid.is_not(None)))).scalar_one()
        allocated += await external.allocated_floating(s, network.id)
        allocated += await db_routers.interfaced(s, [subnet.id])
        if allocated:
            raise AddressesInUse(count=allocated, subnet_id=subnet_uuid)
        await external.drop_floating_rows(s, network.id)
        await s.execute(delete(FixedIp).where(FixedIp.network_id == network.id))
        await tags.forget(s, "subnets", [subnet.uuid])
        await s.delete(subnet)
        await s.execute(update(Network).where(Network.id == network.id).values(
            **dict.fromkeys(L3_COLUMNS), enable_dhcp=True, updated_at=utcnow(),
        ).execution_options(synchronize_session=False))
        return subnet, await _network(s, network.id)
