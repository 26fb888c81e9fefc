"""The scheduler's host-state cache sees changes made elsewhere between requests."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.db import aggregates, migrate, placement, services
from novalet.db.engine import Database
from novalet.rpc.inprocess import InProcessBus
from novalet.scheduler.manager import NoValidHost, SchedulerManager
from tests.unit.scheduler.test_manager import spec


async def _hosts(manager: SchedulerManager, n: int = 1) -> list[str]:
    return [c["host"] for c in await manager.select_destinations(RequestContext(), spec(n))]


async def test_disabled_service_is_seen_at_once(scheduler: Any) -> None:
    manager, db = scheduler
    await _hosts(manager)  # the first, full read
    await services.update_service(db, (await services.find_service(
        db, "h1", "nova-compute")).uuid, disabled=True, disabled_reason="maint")
    assert set(await _hosts(manager, 2)) == {"h2"}


async def test_freed_resources_are_seen(scheduler: Any) -> None:
    manager, db = scheduler
    assert len(await _hosts(manager, 8)) == 8  # both hosts full (4 GB each)
    with pytest.raises(NoValidHost):
        await _hosts(manager)
    await placement.remove_allocations(db, "i0")
    assert len(await _hosts(manager)) == 1


async def test_a_stale_view_costs_a_retry_not_an_overcommit(scheduler: Any) -> None:
    manager, db = scheduler
    await _hosts(manager)
    (h1, h2) = await placement.summaries(db)
    # Claims behind the cache's back fill both hosts completely.
    for provider in (h1, h2):
        free = provider.free("MEMORY_MB")
        assert await placement.claim(db, f"other-{provider.host}", provider.uuid,
                                     {"MEMORY_MB": free}, provider.generation)
    # The cache misses those changes (its next read looks only after the future):
    manager.cache._since = dt.datetime(2999, 1, 1)
    manager.cache._full_at = time.monotonic() + 3600
    with pytest.raises(NoValidHost) as err:
        await _hosts(manager)
    assert "0 MB RAM free" in str(err.value)  # the lost claims made it re-read both
    assert all(p.used.get("MEMORY_MB") == p.capacity["MEMORY_MB"]
               for p in await placement.summaries(db))


async def test_zone_of_an_aggregate_is_used(scheduler: Any) -> None:
    manager, db = scheduler
    agg = await aggregates.create(db, "a", {"availability_zone": "zone-a"})
    await aggregates.add_host(db, agg.id, "h2")
    chosen = await manager.select_destinations(
        RequestContext(), {**spec(1), "availability_zone": "zone-a"})
    assert [(c["host"], c["availability_zone"]) for c in chosen] == [("h2", "zone-a")]


async def test_host_subset_size_picks_among_the_best(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'subset.sqlite'}")
    await migrate.sync(db)
    try:
        for host, ram in (("big", 65536), ("mid", 32768), ("small", 4096)):
            await placement.upsert_provider(db, f"rp-{host}", host, host, "nova", {
                "VCPU": (64, 0, 1.0), "MEMORY_MB": (ram, 0, 1.0), "DISK_GB": (100, 0, 1.0)})
            await services.heartbeat(db, host, "nova-compute", f"compute.{host}")
        conf = config.Config()
        conf.set("filter_scheduler", "host_subset_size", 2)
        conf.set("filter_scheduler", "weight_classes", "RAMWeigher")
        manager = SchedulerManager(conf, db, InProcessBus())
        chosen = {c["host"] for c in await manager.select_destinations(
            RequestContext(), spec(40, ram=64))}
        assert chosen == {"big", "mid"}
    finally:
        await db.close()
