"""Database access for the task log: each host's run of the instance usage audit per
period (os-instance_usage_audit_log reads it)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from novalet.db.engine import Database
from novalet.db.models import Instance, TaskLog

USAGE_AUDIT = "instance_usage_audit"


async def begin_task(db: Database, task_name: str, host: str, begin: dt.datetime,
                     end: dt.datetime) -> bool:
    """Record the task as RUNNING; False when this host has run it (or is running it)
    for the period already."""
    try:
        async with db.transaction() as s:
            s.add(TaskLog(task_name=task_name, state="RUNNING", host=host,
                          period_beginning=begin, period_ending=end, message="",
                          task_items=0, errors=0))
    except IntegrityError:
        return False
    return True


async def end_task(db: Database, task_name: str, host: str, begin: dt.datetime,
                   end: dt.datetime, *, items: int, errors: int, message: str) -> None:
    async with db.transaction() as s:
        task = (await s.execute(select(TaskLog).where(
            TaskLog.task_name == task_name, TaskLog.host == host,
            TaskLog.period_beginning == begin, TaskLog.period_ending == end))).scalar_one()
        task.state = "DONE"
        task.task_items = items
        task.errors = errors
        task.message = message[:255]


async def count_active_on_host(db: Database, host: str, begin: dt.datetime,
                               end: dt.datetime) -> int:
    """Instances on `host` (deleted ones too) that were up at some time in the period."""
    async with db.transaction() as s:
        count = (await s.execute(select(func.count()).select_from(Instance).where(
            Instance.host == host,
            or_(Instance.terminated_at.is_(None), Instance.terminated_at > begin),
            or_(Instance.launched_at.is_(None), Instance.launched_at < end)))).scalar_one()
        return int(count)


async def list_tasks(db: Database, task_name: str, begin: dt.datetime,
                     end: dt.datetime) -> list[TaskLog]:
    async with db.transaction() as s:
        return list((await s.execute(select(TaskLog).where(
            TaskLog.task_name == task_name, TaskLog.period_beginning == begin,
            TaskLog.period_ending == end).order_by(TaskLog.host))).scalars())
