"""Networks as the network API manages them: visible sets, subnet ids, creation
without a subnet, and deletion refused while a server NIC is on the network.
(db/network.py keeps the nova-network side: addresses, NICs, floating IPs.)"""

from __future__ import annotations

import uuid as uuidlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db import external_networks as external
from novalet.db import routers as db_routers
from novalet.db import tags
from novalet.db.engine import Database, rows_matched
from novalet.db.models import FixedIp, Instance, Network, Subnet, VirtualInterface
from novalet.db.network import DuplicateVlan, NetworkInUse, NetworkNotFound
from novalet.db.quotas import lock_project

# Picks the new network's column values from the existing networks (a free VLAN).
BarePlan = Callable[[list[Network]], dict[str, Any]]
# The same for several networks made at once (Neutron's bulk create).
BulkPlan = Callable[[list[Network]], list[dict[str, Any]]]
# A network made by the network API in a flat mode gets a bridge of its own: this
# prefix and its row id (hosts recognise their bridges by the alias, not the name).
OWN_BRIDGE = "nvnet"


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


class TooManyNetworks(exceptions.Conflict):
    neutron_type = "OverQuota"
    msg_fmt = ("Quota exceeded for resources: ['network']: project %(project_id)s has "
               "%(used)s of %(allowed)s networks and asked for %(asked)s more; delete "
               "some, or ask an admin for a larger [quota] networks.")


async def subnet_uuids(db: Database, network_uuids: Sequence[str]) -> dict[str, str]:
    """network uuid -> the uuid of its (one) subnet, for the networks with one."""
    if not network_uuids:
        return {}
    async with db.transaction() as s:
        rows = await s.execute(select(Network.uuid, Subnet.uuid).join(
            Subnet, Subnet.network_id == Network.id).where(
            Network.uuid.in_(list(network_uuids))).order_by(Subnet.id.desc()))
        return {network: subnet for network, subnet in rows}


async def create_bare_network(db: Database, plan: BarePlan) -> Network:
    """create_bare_networks for one network."""
    (network,) = await create_bare_networks(db, lambda existing: [plan(existing)])
    return network


async def create_bare_networks(db: Database, plan: BulkPlan,
                               quotas: Mapping[str, int] | None = None) -> list[Network]:
    """Insert networks without a subnet (their L3 columns NULL) from the values
    `plan` picks while the existing rows are locked: all of them or none, in one
    transaction. A network given no bridge gets its own, "nvnet<row id>".
    quotas {project: limit}: TooManyNetworks when a project would pass its limit (-1
    is unlimited). DuplicateVlan when a VLAN is taken (by a row or a concurrent creator)."""
    planned: list[dict[str, Any]] = []
    try:
        async with db.transaction() as s:
            for project_id in sorted(quotas or {}):  # counted below, after waiting
                await lock_project(s, project_id)
            existing = list((await s.execute(select(Network).order_by(
                Network.id).with_for_update())).scalars())
            planned = plan(existing)
            for project_id, allowed in (quotas or {}).items():
                asked = sum(1 for v in planned if v.get("project_id") == project_id)
                _admit(existing, project_id, allowed, asked)
            _check_vlans(existing, planned)
            networks = [Network(uuid=str(uuidlib.uuid4()),
                                **{"bridge": OWN_BRIDGE, **values}) for values in planned]
            s.add_all(networks)
            await s.flush()
            for network in networks:
                if network.bridge == OWN_BRIDGE:  # unique, <= 15 characters
                    network.bridge = f"{OWN_BRIDGE}{network.id}"
            await s.flush()
            return networks
    except IntegrityError:
        vlans = [v["vlan"] for v in planned if v.get("vlan") is not None]
        if not vlans:
            raise
        raise DuplicateVlan(vlan=vlans[0]) from None


def _admit(existing: list[Network], project_id: str, allowed: int, asked: int) -> None:
    used = sum(1 for n in existing if n.project_id == project_id and not n.deleted)
    if allowed >= 0 and used + asked > allowed:
        raise TooManyNetworks(project_id=project_id, used=used, allowed=allowed, asked=asked)


def _check_vlans(existing: list[Network], planned: list[dict[str, Any]]) -> None:
    taken = {n.vlan for n in existing if n.vlan is not None}
    for values in planned:
        vlan = values.get("vlan")
        if vlan is None:
            continue
        if vlan in taken:
            raise DuplicateVlan(vlan=vlan)
        taken.add(vlan)


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
    """How many ports on the network (server NICs and ports bound to nothing)
    belong to other projects."""
    project = func.coalesce(VirtualInterface.project_id, Instance.project_id)
    foreign = project != owner if owner is not None else true()
    async with db.transaction() as s:
        return int((await s.execute(select(func.count(VirtualInterface.id)).join(
            Network, Network.id == VirtualInterface.network_id).outerjoin(
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
        allocated += await db_routers.interfaced(s, list((await s.execute(select(
            Subnet.id).where(Subnet.network_id == network.id))).scalars()))
        if nics or allocated:
            raise NetworkInUse(network_id=network_uuid)
        await external.drop_floating_rows(s, network.id)
        await s.execute(delete(FixedIp).where(FixedIp.network_id == network.id))
        await tags.forget(s, "subnets", select(Subnet.uuid).where(Subnet.network_id == network.id))
        await s.execute(delete(Subnet).where(Subnet.network_id == network.id))
        await tags.forget(s, "networks", [network.uuid])
        await s.delete(network)
