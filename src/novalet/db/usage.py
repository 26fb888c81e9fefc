"""Database access for usage reports: instances (deleted ones too) that were up at
some time in a period."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select

from novalet import exceptions
from novalet.db.engine import Database
from novalet.db.models import Instance


class UsageMarkerNotFound(exceptions.Invalid):
    msg_fmt = "marker [%(marker)s] not found"


async def active_in_window(db: Database, start: dt.datetime, end: dt.datetime, *,
                           project_id: str | None = None, limit: int | None = None,
                           marker: str | None = None) -> list[Instance]:
    """Instances launched before `end` and not terminated before `start` (never
    launched ones are left out, as Nova's query leaves them: a usage has a
    started_at), oldest first by created_at and id; a marker is the uuid of the
    last one seen."""
    async with db.transaction() as s:
        query = select(Instance).where(
            or_(Instance.terminated_at.is_(None), Instance.terminated_at > start),
            Instance.launched_at < end)
        if project_id is not None:
            query = query.where(Instance.project_id == project_id)
        if marker is not None:
            mark = (await s.execute(select(Instance.created_at, Instance.id).where(
                Instance.uuid == marker))).one_or_none()
            if mark is None:
                raise UsageMarkerNotFound(marker=marker)
            query = query.where(or_(Instance.created_at > mark.created_at, and_(
                Instance.created_at == mark.created_at, Instance.id > mark.id)))
        query = query.order_by(Instance.created_at, Instance.id)
        if limit is not None:
            query = query.limit(limit)
        return list((await s.execute(query)).scalars())
