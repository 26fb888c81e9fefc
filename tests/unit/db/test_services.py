"""Service records: filters, updates, and deleting a compute service with its providers."""

from pathlib import Path
from typing import Any

import pytest

from novalet.db import migrate, placement, services
from novalet.db.engine import Database


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 's.sqlite'}")
    await migrate.sync(database)
    yield database
    await database.close()


async def _compute_host(db: Database, host: str) -> str:
    """A compute service on `host` and its provider rp-<host>; returns the service uuid."""
    await placement.upsert_provider(db, f"rp-{host}", f"node-{host}", host, "nova",
                                    {"VCPU": (4, 0, 1.0)})
    return (await services.heartbeat(db, host, "nova-compute", f"compute.{host}")).uuid


async def test_list_filters_by_host_and_binary(db: Database) -> None:
    await services.heartbeat(db, "h1", "nova-compute", "compute.h1")
    await services.heartbeat(db, "h1", "nova-conductor", "conductor")
    await services.heartbeat(db, "h2", "nova-compute", "compute.h2")
    assert [(s.host, s.binary) for s in await services.list_services(db, host="h1")] == [
        ("h1", "nova-compute"), ("h1", "nova-conductor")]
    assert [s.host for s in await services.list_services(db, "nova-compute", "h2")] == ["h2"]
    assert len(await services.list_services(db)) == 3


async def test_enabling_clears_the_reason_and_forced_down_is_down(db: Database) -> None:
    uuid = await _compute_host(db, "h1")
    record = await services.update_service(db, uuid, disabled=True, disabled_reason="why")
    assert (record.disabled, record.disabled_reason) == (True, "why")
    record = await services.update_service(db, uuid, forced_down=True)
    assert (record.disabled_reason, services.is_up(record, 60)) == ("why", False)
    record = await services.update_service(db, uuid, disabled=False, forced_down=False)
    assert (record.disabled, record.disabled_reason, services.is_up(record, 60)) == (
        False, None, True)
    with pytest.raises(services.ServiceNotFound):
        await services.update_service(db, "nope", disabled=True)


async def test_delete_compute_takes_only_its_own_providers(db: Database) -> None:
    uuid = await _compute_host(db, "h1")
    await _compute_host(db, "h2")
    await services.delete_service(db, uuid)
    assert [p.host for p in await placement.summaries(db)] == ["h2"]
    assert [s.host for s in await services.list_services(db)] == ["h2"]
    with pytest.raises(services.ServiceNotFound):
        await services.get_service(db, uuid)


async def test_allocations_keep_a_compute_service(db: Database) -> None:
    uuid = await _compute_host(db, "h1")
    (provider,) = await placement.summaries(db)
    assert await placement.claim(db, "inst-1:resize", provider.uuid, {"VCPU": 1},
                                 provider.generation)
    with pytest.raises(services.ComputeServiceInUse) as caught:
        await services.delete_service(db, uuid)
    assert "1 instance(s) are still on it (inst-1)" in caught.value.message
    assert len(await placement.summaries(db)) == 1
    await placement.remove_allocations(db, "inst-1:resize")
    await services.delete_service(db, uuid)
    assert await placement.summaries(db) == []


async def test_a_claim_racing_the_delete_keeps_everything(db: Database,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """When the provider's generation moved after the check (a claim landed), the
    delete matches no row: nothing is removed."""
    uuid = await _compute_host(db, "h1")
    monkeypatch.setattr(services, "rows_matched", lambda result: 0)
    with pytest.raises(services.ComputeServiceChanged):
        await services.delete_service(db, uuid)
    assert len(await placement.summaries(db)) == 1
    assert (await services.get_service(db, uuid)).host == "h1"
