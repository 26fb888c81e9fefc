"""A scheduler over two empty hosts (h1, h2: 4 vCPU, 4 GiB, 100 GB each) in SQLite."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet import config
from novalet.db import migrate, placement, services
from novalet.db.engine import Database
from novalet.rpc.inprocess import InProcessBus
from novalet.scheduler.manager import SchedulerManager


@pytest.fixture
async def scheduler(tmp_path: Path) -> AsyncIterator[tuple[SchedulerManager, Database]]:
    db = Database(f"sqlite:///{tmp_path / 's.sqlite'}")
    await migrate.sync(db)
    for host in ("h1", "h2"):
        await placement.upsert_provider(db, f"rp-{host}", host, host, "nova", {
            "VCPU": (4, 0, 1.0), "MEMORY_MB": (4096, 0, 1.0), "DISK_GB": (100, 0, 1.0)})
        await services.heartbeat(db, host, "nova-compute", f"compute.{host}")
    manager = SchedulerManager(config.Config(), db, InProcessBus())
    yield manager, db
    await db.close()
