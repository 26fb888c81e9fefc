"""os-instance_usage_audit_log: the audit's task log per host, for the last whole
period before now or before a timestamp."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from novalet.common.timeutils import utcnow
from novalet.compute.audit_period import last_completed
from novalet.compute.usage_audit import run_for_host
from novalet.db import task_log
from novalet.service.allinone import AllInOne
from tests.functional.conftest import Api, boot, make_conf

A = "/compute/v2.1/os-instance_usage_audit_log"


async def test_no_host_has_run_yet(api: Api) -> None:
    resp = await api.request("GET", A, user="admin")
    assert resp.status_code == 200, resp.text
    log = resp.json()["instance_usage_audit_logs"]
    begin, end = last_completed("month", utcnow())
    assert (log["period_beginning"], log["period_ending"]) == (str(begin), str(end))
    assert log["num_hosts"] == 1 and log["num_hosts_not_run"] == 1
    assert log["hosts_not_run"] == ["fake-host-1"]
    assert log["overall_status"] == "0 of 1 hosts done. 0 errors."
    assert log["log"] == {}


async def test_a_host_audit_is_reported_once(api: Api) -> None:
    await boot(api)
    db = api.cloud.services.db
    # The period that ends after the server launched counts it.
    begin, end = last_completed("month", utcnow() + dt.timedelta(days=32))
    assert await run_for_host(db, "fake-host-1", begin, end)
    assert not await run_for_host(db, "fake-host-1", begin, end)  # done already
    stamp = (end + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    resp = await api.request("GET", f"{A}/{stamp}", user="admin")
    assert resp.status_code == 200, resp.text
    log = resp.json()["instance_usage_audit_log"]
    assert log["overall_status"] == "ALL hosts done. 0 errors."
    assert log["total_instances"] == 1 and log["num_hosts_done"] == 1
    entry = log["log"]["fake-host-1"]
    assert entry["state"] == "DONE" and entry["instances"] == 1
    assert entry["message"].startswith("Instance usage audit ran for host fake-host-1, 1 "
                                       "instances in ")


async def test_bad_timestamp_and_members(api: Api) -> None:
    resp = await api.request("GET", f"{A}/yesterday", user="admin")
    assert resp.status_code == 400 and "Invalid timestamp for date yesterday" in resp.text
    assert (await api.request("GET", A)).status_code == 403
    assert (await api.request("GET", f"{A}/2020-01-01 00:00:00")).status_code == 403


async def test_compute_hosts_run_the_audit_when_enabled(state_dir: Path) -> None:
    conf = make_conf(state_dir, instance_usage_audit=True, instance_usage_audit_interval=0.05,
                     instance_usage_audit_period="hour")
    cloud = AllInOne(conf, in_process_http=True)
    await cloud.start()
    try:
        begin, end = last_completed("hour", utcnow())
        for _ in range(200):
            tasks = await task_log.list_tasks(cloud.services.db, task_log.USAGE_AUDIT,
                                              begin, end)
            if tasks and tasks[0].state == "DONE":
                break
            await asyncio.sleep(0.02)
        assert [(t.host, t.state) for t in tasks] == [("fake-host-1", "DONE")]
    finally:
        await cloud.stop()


async def test_only_novas_path_with_underscores_is_served(api: Api) -> None:
    """Nova and every client spell it os-instance_usage_audit_log; the hyphenated
    path this API once had is not routed."""
    resp = await api.request("GET", "/compute/v2.1/os-instance-usage-audit-log", user="admin")
    assert resp.status_code == 404
