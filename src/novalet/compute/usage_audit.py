"""The instance usage audit: once per audit period each compute host counts the
instances it ran in the last whole period and records it in the task log; the
os-instance_usage_audit_log API reports how far the hosts got."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from novalet import config
from novalet.compute.audit_period import last_completed
from novalet.db import services as db_services
from novalet.db import task_log
from novalet.db.engine import Database


async def run_for_host(db: Database, host: str, begin: dt.datetime, end: dt.datetime
                       ) -> bool:
    """Audit `host` for [begin, end) unless done already; True when it ran now."""
    if not await task_log.begin_task(db, task_log.USAGE_AUDIT, host, begin, end):
        return False
    started = time.monotonic()
    count = await task_log.count_active_on_host(db, host, begin, end)
    await task_log.end_task(
        db, task_log.USAGE_AUDIT, host, begin, end, items=count, errors=0,
        message=f"Instance usage audit ran for host {host}, {count} instances in "
                f"{time.monotonic() - started:.3f} seconds.")
    return True


async def report(db: Database, conf: config.Config, before: dt.datetime) -> dict[str, Any]:
    """The audit of the last whole period before `before`, over every compute host
    (disabled ones too: they may hold instances)."""
    begin, end = last_completed(conf.get("DEFAULT", "instance_usage_audit_period"), before)
    tasks = await task_log.list_tasks(db, task_log.USAGE_AUDIT, begin, end)
    hosts = {s.host for s in await db_services.list_services(
        db, binary=db_services.COMPUTE_BINARY)}
    seen = {t.host for t in tasks}
    done = {t.host for t in tasks if t.state == "DONE"}
    running = {t.host for t in tasks if t.state == "RUNNING"}
    errors = sum(t.errors for t in tasks)
    not_run = sorted(hosts - seen)
    done_text = "ALL" if len(done) == len(hosts) else f"{len(done)} of {len(hosts)}"
    return {
        "period_beginning": str(begin), "period_ending": str(end),
        "num_hosts": len(hosts), "num_hosts_done": len(done),
        "num_hosts_running": len(running), "num_hosts_not_run": len(not_run),
        "hosts_not_run": not_run, "total_instances": sum(t.task_items for t in tasks),
        "total_errors": errors,
        "overall_status": f"{done_text} hosts done. {errors} errors.",
        "log": {t.host: {"state": t.state, "instances": t.task_items, "errors": t.errors,
                         "message": t.message} for t in tasks}}
