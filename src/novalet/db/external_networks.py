"""External networks: the networks floating IPs come from (docs/network-api.md).

An external network's subnet is mirrored into its L3 columns like any subnet (so
CIDRs stay unique across the cloud), but its addresses are floating_ips rows, one
per allocation-pool address, not fixed_ips: no host serves guests on it. The rows
keep `pool` = the network's name, which the compute API's proxy (os-floating-ips,
os-floating-ip-pools) reads. These helpers run inside the callers' transactions
(db/subnets.py, db/networks.py) or make a configured pool's network (start-up)."""

from __future__ import annotations

import ipaddress
import uuid as uuidlib
from collections.abc import Sequence

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet.common.timeutils import utcnow
from novalet.db.engine import Database
from novalet.db.models import FloatingIp, Network, Subnet
from novalet.db.subnet_pools import Pool, in_pools, pools_of


async def add_floating_rows(s: AsyncSession, network: Network,
                            addresses: Sequence[tuple[str, bool]]) -> None:
    """A floating_ips row for each unreserved (address, reserved) of the network."""
    now = utcnow()
    rows = [{"address": a, "pool": network.label, "network_id": network.id,
             "uuid": str(uuidlib.uuid4()), "description": "", "auto_assigned": False,
             "created_at": now} for a, reserved in addresses if not reserved]
    if rows:
        await s.execute(insert(FloatingIp), rows)


async def allocated_floating(s: AsyncSession, network_id: int) -> int:
    """How many of the network's floating IPs a project (or a router's gateway) holds."""
    return int((await s.execute(select(func.count(FloatingIp.id)).where(
        FloatingIp.network_id == network_id, or_(
            FloatingIp.project_id.is_not(None), FloatingIp.fixed_ip_id.is_not(None),
            FloatingIp.router_id.is_not(None)))
    )).scalar_one())


async def drop_floating_rows(s: AsyncSession, network_id: int) -> None:
    await s.execute(delete(FloatingIp).where(FloatingIp.network_id == network_id))


async def rename_pool(s: AsyncSession, network_id: int, name: str) -> None:
    """The proxy's pool name follows the network's name."""
    await s.execute(update(FloatingIp).where(FloatingIp.network_id == network_id).values(
        pool=name).execution_options(synchronize_session=False))


async def repool_floating(s: AsyncSession, network: Network, old: Sequence[Pool],
                          new: Sequence[Pool]) -> None:
    """Allocation pools changed: addresses leaving them go unless held (a project
    keeps the one it holds), joining ones get rows."""
    # a router's gateway address is held too
    rows = [(row_id, address, project if router is None else "router")
            for row_id, address, project, router in (await s.execute(select(
                FloatingIp.id, FloatingIp.address, FloatingIp.project_id, FloatingIp.router_id)
                .where(FloatingIp.network_id == network.id))).all()]
    have = {address for _, address, _ in rows}
    leaving = [row_id for row_id, address, project in rows
               if project is None and not in_pools(address, new)]
    if leaving:
        await s.execute(delete(FloatingIp).where(FloatingIp.id.in_(leaving)))
    assert network.cidr is not None
    joining = [(str(a), False) for a in ipaddress.ip_network(network.cidr)
               if in_pools(str(a), new) and not in_pools(str(a), old) and str(a) not in have]
    await add_floating_rows(s, network, joining)


async def ensure_pool_network(db: Database, name: str, cidr: ipaddress.IPv4Network,
                              hosts: Sequence[str]) -> tuple[Network, int]:
    """The external network of configured pool `name` (made once: no gateway, no
    DHCP, no project) and its addresses `hosts` not stored yet; (network, how many
    rows were added). The pool's rows without a network are linked to it. Found by
    its addresses, so a renamed network keeps its pool."""
    try:
        async with db.transaction() as s:
            existing = list((await s.execute(select(Network).order_by(
                Network.id).with_for_update())).scalars())
            network = await _pool_network(s, name, hosts)
            if network is None:
                network = await _new_pool_network(s, existing, name, cidr, hosts)
            await s.execute(update(FloatingIp).where(
                FloatingIp.address.in_(list(hosts)), FloatingIp.network_id.is_(None)).values(
                network_id=network.id).execution_options(synchronize_session=False))
            stored = set((await s.execute(select(FloatingIp.address).where(
                FloatingIp.address.in_(list(hosts))))).scalars())
            new = [(a, False) for a in hosts if a not in stored]
            await add_floating_rows(s, network, new)
            return network, len(new)
    except IntegrityError:  # another process made the pool at the same moment
        async with db.transaction() as s:
            again = await _pool_network(s, name, hosts)
        if again is None:
            raise
        return again, 0


async def _pool_network(s: AsyncSession, name: str, hosts: Sequence[str]) -> Network | None:
    """The network holding the pool's addresses (whatever it is named now), else an
    external network named after it."""
    linked = (await s.execute(select(FloatingIp.network_id).where(
        FloatingIp.address.in_(list(hosts)), FloatingIp.network_id.is_not(None)
    ).limit(1))).scalar()
    query = select(Network).where(Network.external.is_(True))
    query = query.where(Network.id == linked) if linked is not None else query.where(
        Network.label == name)
    return (await s.execute(query.order_by(Network.id).limit(1))).scalar_one_or_none()


async def _new_pool_network(s: AsyncSession, existing: list[Network], name: str,
                            cidr: ipaddress.IPv4Network, hosts: Sequence[str]) -> Network:
    # a CIDR a guest network overlaps stays off the row (its subnet still shows it)
    free = not any(n.cidr and ipaddress.ip_network(n.cidr).overlaps(cidr) for n in existing)
    network = Network(uuid=str(uuidlib.uuid4()), label=name, description="", shared=False,
                      external=True, enable_dhcp=False, bridge="", multi_host=False,
                      cidr=str(cidr) if free else None,
                      netmask=str(cidr.netmask) if free else None,
                      broadcast=str(cidr.broadcast_address) if free else None)
    s.add(network)
    await s.flush()
    s.add(Subnet(uuid=str(uuidlib.uuid4()), network_id=network.id, name="", description="",
                 project_id=None, ip_version=4, cidr=str(cidr), gateway_ip=None,
                 enable_dhcp=False, allocation_pools=pools_of([(a, False) for a in hosts]),
                 dns_nameservers=[], host_routes=[]))
    await s.flush()
    return network
