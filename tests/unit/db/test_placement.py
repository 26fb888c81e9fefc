"""Allocation claims: atomic, generation-checked, never over capacity."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from novalet.db import migrate, placement
from novalet.db.engine import Database
from tests import server_db


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    """SQLite, or a fresh database on the NOVALET_TEST_DATABASE server."""
    server = server_db.server_url()
    url = await server_db.create_database(server) if server else f"sqlite:///{tmp_path / 'p.sqlite'}"
    database = Database(url)
    await migrate.sync(database)
    yield database
    await database.close()
    if server:
        await server_db.drop_database(server, url)


async def _provider(db: Database, vcpus: int = 4, ram: int = 4096) -> placement.ProviderSummary:
    await placement.upsert_provider(db, "rp-1", "node-1", "host-1", "nova", {
        "VCPU": (vcpus, 0, 1.0), "MEMORY_MB": (ram, 512, 1.0), "DISK_GB": (100, 0, 1.0)})
    (summary,) = await placement.summaries(db)
    return summary


async def test_capacity_applies_reserved_and_ratio(db: Database) -> None:
    summary = await _provider(db)
    assert summary.capacity == {"VCPU": 4, "MEMORY_MB": 3584, "DISK_GB": 100}
    assert summary.free("VCPU") == 4


async def test_claim_bumps_generation_and_counts_usage(db: Database) -> None:
    summary = await _provider(db)
    assert await placement.claim(db, "c1", "rp-1", {"VCPU": 1, "MEMORY_MB": 512},
                                 summary.generation)
    (after,) = await placement.summaries(db)
    assert after.generation == summary.generation + 1
    assert after.used == {"VCPU": 1, "MEMORY_MB": 512}
    assert await placement.allocations_of(db, "c1") == {"VCPU": 1, "MEMORY_MB": 512}


async def test_stale_generation_loses(db: Database) -> None:
    summary = await _provider(db)
    assert await placement.claim(db, "c1", "rp-1", {"VCPU": 1}, summary.generation)
    assert not await placement.claim(db, "c2", "rp-1", {"VCPU": 1}, summary.generation)
    assert await placement.allocations_of(db, "c2") == {}


async def test_claim_over_capacity_fails_and_leaves_nothing(db: Database) -> None:
    summary = await _provider(db, vcpus=2)
    assert not await placement.claim(db, "c1", "rp-1", {"VCPU": 3}, summary.generation)
    (after,) = await placement.summaries(db)
    assert after.generation == summary.generation and after.used == {}


async def test_concurrent_claims_never_exceed_capacity(db: Database) -> None:
    await _provider(db, vcpus=5)

    async def claim_with_retry(consumer: str) -> bool:
        for _ in range(50):
            (summary,) = await placement.summaries(db)
            if summary.free("VCPU") < 1:
                return False
            if await placement.claim(db, consumer, "rp-1", {"VCPU": 1}, summary.generation):
                return True
        return False

    results = await asyncio.gather(*[claim_with_retry(f"c{i}") for i in range(12)])
    assert sum(results) == 5
    (after,) = await placement.summaries(db)
    assert after.used == {"VCPU": 5}


async def test_remove_allocations(db: Database) -> None:
    summary = await _provider(db)
    await placement.claim(db, "c1", "rp-1", {"VCPU": 2}, summary.generation)
    await placement.remove_allocations(db, "c1")
    (after,) = await placement.summaries(db)
    assert after.used == {}
