"""Database access for instance actions, their events, and instance faults."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.db.engine import Database
from novalet.db.models import InstanceAction, InstanceActionEvent, InstanceFault


class ActionNotFound(exceptions.NotFound):
    msg_fmt = "Action for request_id %(request_id)s on instance %(instance_uuid)s not found"


async def start(db: Database, ctx: RequestContext, instance_uuids: list[str],
                action: str) -> None:
    """Record that `action` began on each instance under ctx's request id."""
    async with db.transaction() as s:
        s.add_all([InstanceAction(action=action, instance_uuid=u, request_id=ctx.request_id,
                                  user_id=ctx.user_id or "", project_id=ctx.project_id or "")
                   for u in instance_uuids])


async def _action(s: AsyncSession, uuid: str, request_id: str) -> InstanceAction | None:
    return (await s.execute(select(InstanceAction).where(
        InstanceAction.instance_uuid == uuid, InstanceAction.request_id == request_id)
        .order_by(InstanceAction.id.desc()).limit(1))).scalar_one_or_none()


async def event_start(db: Database, ctx: RequestContext, uuid: str, event: str,
                      host: str | None) -> None:
    async with db.transaction() as s:
        action = await _action(s, uuid, ctx.request_id)
        if action is not None:
            s.add(InstanceActionEvent(action_id=action.id, event=event, host=host))


async def event_finish(db: Database, ctx: RequestContext, uuid: str, event: str,
                       result: str, traceback: str | None = None,
                       details: str | None = None) -> None:
    """Close the event; a failed event marks its action 'Error' as Nova does."""
    now = utcnow()
    async with db.transaction() as s:
        action = await _action(s, uuid, ctx.request_id)
        if action is None:
            return
        await s.execute(update(InstanceActionEvent).where(
            InstanceActionEvent.action_id == action.id, InstanceActionEvent.event == event,
            InstanceActionEvent.finish_time.is_(None)).values(
            finish_time=now, result=result, traceback=traceback, details=details))
        values: dict[str, object] = {"finish_time": now, "updated_at": now}
        if result == "Error":
            values["message"] = "Error"
        await s.execute(update(InstanceAction).where(InstanceAction.id == action.id)
                        .values(**values))


async def list_for_instance(db: Database, uuid: str, limit: int | None = None,
                            marker: str | None = None,
                            changes_since: dt.datetime | None = None,
                            changes_before: dt.datetime | None = None
                            ) -> list[InstanceAction]:
    async with db.transaction() as s:
        query = select(InstanceAction).where(InstanceAction.instance_uuid == uuid)
        if marker:
            mark = await _action(s, uuid, marker)
            if mark is None:
                raise exceptions.Invalid(f"Marker {marker} could not be found.")
            query = query.where(InstanceAction.id < mark.id)
        if changes_since:
            query = query.where(InstanceAction.updated_at >= changes_since)
        if changes_before:
            query = query.where(InstanceAction.updated_at <= changes_before)
        query = query.order_by(InstanceAction.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return list((await s.execute(query)).scalars())


async def get(db: Database, uuid: str, request_id: str) -> InstanceAction:
    async with db.transaction() as s:
        action = await _action(s, uuid, request_id)
    if action is None:
        raise ActionNotFound(request_id=request_id, instance_uuid=uuid)
    return action


async def add_fault(db: Database, uuid: str, code: int, message: str, details: str,
                    host: str | None) -> None:
    async with db.transaction() as s:
        s.add(InstanceFault(instance_uuid=uuid, code=code, message=message[:2048],
                            details=details, host=host))


async def latest_faults(db: Database, uuids: list[str]) -> dict[str, InstanceFault]:
    """The newest fault of each instance that has one."""
    if not uuids:
        return {}
    async with db.transaction() as s:
        rows = (await s.execute(select(InstanceFault).where(
            InstanceFault.instance_uuid.in_(uuids)).order_by(InstanceFault.id))).scalars()
        return {f.instance_uuid: f for f in rows}
