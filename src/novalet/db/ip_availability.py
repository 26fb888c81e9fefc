"""Address counts per network for the network API's IP availability: two grouped
queries (guest addresses from fixed_ips, floating ones from floating_ips), never a
row-by-row count."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, case, func, select

from novalet.db.engine import Database
from novalet.db.models import FixedIp, FloatingIp, Network, Subnet


@dataclass(frozen=True)
class Availability:
    """One network's counts; subnet columns are None when it has no subnet."""

    network_uuid: str
    network_name: str
    project_id: str | None
    subnet_uuid: str | None
    subnet_name: str | None
    cidr: str | None
    total: int
    used: int


async def list_availability(db: Database) -> list[Availability]:
    """Every network: total = addresses its pools hand out (fixed_ips rows not
    reserved; for an external network its floating_ips rows), used = held ones (a
    server's or a port's fixed IP, whether or not reserved since; a floating IP a
    project holds)."""
    held = FixedIp.allocated.is_(True) | FixedIp.instance_uuid.is_not(None)
    fixed = (select(FixedIp.network_id.label("network_id"),
                    func.sum(case((FixedIp.reserved.is_(False), 1), else_=0)).label("total"),
                    func.sum(case((held, 1), else_=0)).label("used"))
             .group_by(FixedIp.network_id).subquery())
    floating = (select(FloatingIp.network_id.label("network_id"),
                       func.count(FloatingIp.id).label("total"),
                       func.count(FloatingIp.project_id).label("used"))
                .where(FloatingIp.network_id.is_not(None))
                .group_by(FloatingIp.network_id).subquery())
    external = Network.external.is_(True)
    total = case((external, func.coalesce(floating.c.total, 0)),
                 else_=func.coalesce(fixed.c.total, 0))
    used = case((external, func.coalesce(floating.c.used, 0)),
                else_=func.coalesce(fixed.c.used, 0))
    query = (select(Network.uuid, Network.label, Network.project_id, Subnet.uuid,
                    Subnet.name, Subnet.cidr, total.cast(Integer), used.cast(Integer))
             .outerjoin(Subnet, Subnet.network_id == Network.id)
             .outerjoin(fixed, fixed.c.network_id == Network.id)
             .outerjoin(floating, floating.c.network_id == Network.id)
             .where(Network.deleted.is_(False)).order_by(Network.id))
    async with db.transaction() as s:
        return [Availability(*row) for row in (await s.execute(query)).all()]
