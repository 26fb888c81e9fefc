"""Networks as the network API manages them: visible sets, subnet ids, creation
without a subnet, and deletion refused while a server NIC is on the network.
(db/network.py keeps the nova-network side: addresses, NICs, floating IPs.)"""

from __future__ import annotations

import uuid as uuidlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from novalet.common.timeutils import utcnow
from novalet.db import external_networks as external
from novalet.db.engine import Database, rows_matched
from novalet.db.models import FixedIp, Instance, Network, Subnet, VirtualInterface
from novalet.db.network import DuplicateVlan, NetworkInUse, NetworkNotFound

# Picks the new network's column values from the existing networks (a free VLAN).
BarePlan = Callable[[list[Network]], dict[str, Any]]


async def visible_networks(db: Database, project_id: str | None) -> list[Network]:
    """Every network (project_id None), or those a project sees: its own, the
    unassigned ones (nova-network's networks for everyone), shared and external."""
    query = select(Network).order_by(Network.id)
    if project_id is not None:
        query = query.where(or_(Network.project_id == project_id, Network.project_id.is_(None),
                                Network.shared.is_(True), Network.external.is_(True)))
    async with db.transaction() as s:
        return list((await s.execute(query)).scalars())


async def subnet_ids(db: Database, network_ids: Sequence[int]) -> dict[int, list[str]]:
    """The subnet uuids of each network (by row id), oldest first."""
    found: dict[int, list[str]] = defaultdict(list)
    if not network_ids:
        return found
    async with db.transaction() as s:
        rows = await s.execute(select(Subnet.network_id, Subnet.uuid).where(
            Subnet.network_id.in_(list(network_ids))).order_by(Subnet.id))
        for network_id, subnet_uuid in rows:
            found[network_id].append(subnet_uuid)
    return found


async def create_bare_network(db: Database, plan: BarePlan) -> Network:
    """Insert a network without a subnet (its L3 columns NULL) from the values
    `plan` picks while the existing rows are locked. DuplicateVlan when the VLAN
    is taken (by a row or a concurrent creator)."""
    values: dict[str, Any] = {}
    try:
        async with db.transaction() as s:
            existing = list((await s.execute(select(Network).order_by(
                Network.id).with_for_update())).scalars())
            values = plan(existing)
            if values.get("vlan") is not None and any(
                    n.vlan == values["vlan"] for n in existing):
                raise DuplicateVlan(vlan=values["vlan"])
            network = Network(uuid=str(uuidlib.uuid4()), **values)
            s.add(network)
            await s.flush()
            return network
    except IntegrityError:
        raise DuplicateVlan(vlan=values.get("vlan") or 0) from None


async def update_network(db: Database, network_uuid: str, values: dict[str, Any]) -> Network:
    """Set columns of a network; the row as it is then."""
    async with db.transaction() as s:
        result = await s.execute(update(Network).where(Network.uuid == network_uuid).values(
            **values, updated_at=utcnow()).execution_options(synchronize_session=False))
        if rows_matched(result) == 0:
            raise NetworkNotFound(network_id=network_uuid)
        network = (await s.execute(select(Network).where(Network.uuid == network_uuid))
                   ).scalar_one()
        if "label" in values:
            await external.rename_pool(s, network.id, values["label"])
        return (await s.execute(select(Network).where(Network.uuid == network_uuid)
                                .execution_options(populate_existing=True))).scalar_one()


async def foreign_nics(db: Database, network_uuid: str, owner: str | None) -> int:
    """How many server NICs on the network belong to servers of other projects."""
    foreign = Instance.project_id != owner if owner is not None else true()
    async with db.transaction() as s:
        return int((await s.execute(select(func.count(VirtualInterface.id)).join(
            Network, Network.id == VirtualInterface.network_id).join(
            Instance, Instance.uuid == VirtualInterface.instance_uuid).where(
            Network.uuid == network_uuid, foreign))).scalar_one())


async def delete_unused_network(db: Database, network_uuid: str) -> None:
    """Delete a network, its subnets and its addresses; NetworkInUse while any
    server NIC (or allocated address, or held floating IP) is on it."""
    async with db.transaction() as s:
        network = (await s.execute(select(Network).where(
            Network.uuid == network_uuid).with_for_update())).scalar_one_or_none()
        if network is None:
            raise NetworkNotFound(network_id=network_uuid)
        nics = (await s.execute(select(func.count(VirtualInterface.id)).where(
            VirtualInterface.network_id == network.id))).scalar_one()
        allocated = (await s.execute(select(func.count(FixedIp.id)).where(
            FixedIp.network_id == network.id, FixedIp.instance_uuid.is_not(None)))).scalar_one()
        allocated += await external.allocated_floating(s, network.id)
        if nics or allocated:
            raise NetworkInUse(network_id=network_uuid)
        await external.drop_floating_rows(s, network.id)
        await s.execute(delete(FixedIp).where(FixedIp.network_id == network.id))
        await s.execute(delete(Subnet).where(Subnet.network_id == network.id))
        await s.delete(network)
