"""Database access for service records and their heartbeats."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib

from sqlalchemy import select

from novalet.common.timeutils import utcnow
from novalet.db.engine import Database
from novalet.db.models import Service


async def heartbeat(db: Database, host: str, binary: str, topic: str) -> Service:
    """Create the service record on first report, then bump it."""
    async with db.transaction() as s:
        service = (await s.execute(select(Service).where(
            Service.host == host, Service.binary == binary))).scalar_one_or_none()
        if service is None:
            service = Service(uuid=str(uuidlib.uuid4()), host=host, binary=binary,
                              topic=topic, report_count=0)
            s.add(service)
        service.report_count += 1
        service.last_seen_up = utcnow()
        return service


async def list_services(db: Database, binary: str | None = None) -> list[Service]:
    async with db.transaction() as s:
        query = select(Service).order_by(Service.id)
        if binary:
            query = query.where(Service.binary == binary)
        return list((await s.execute(query)).scalars())


def is_up(service: Service, down_time: float, now: dt.datetime | None = None) -> bool:
    """Up: not forced down and heard from within `down_time` seconds."""
    if service.forced_down or service.last_seen_up is None:
        return False
    return ((now or utcnow()) - service.last_seen_up).total_seconds() <= down_time
