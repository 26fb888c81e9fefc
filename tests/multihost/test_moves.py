"""Moves between two compute processes over RabbitMQ and PostgreSQL: a cold migration
confirmed, and a live migration whose progress the source host reports under its
own bus identity (the conductor serves it only for a move it is part of)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.multihost.conftest import Cloud, deployment, wait_for

pytestmark = pytest.mark.integration
COMPUTES = ["compute-1", "compute-2"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str]
          ) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("moves")
    for dep, database in deployment(root, backing, COMPUTES):
        yield Cloud(dep, database)


def _server(cloud: Cloud, sid: str) -> dict[str, Any]:
    return dict(cloud.api("GET", f"/servers/{sid}").json()["server"])


def _settled(cloud: Cloud, sid: str, status: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        server = _server(cloud, sid)
        ok = server["status"] == status and not server["OS-EXT-STS:task_state"]
        return server if ok else None
    found: dict[str, Any] = wait_for(check, 60, f"{sid} never {status}")
    return found


def _migration(cloud: Cloud, sid: str, status: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = cloud.api("GET", f"/os-migrations?instance_uuid={sid}", version="2.80")
        migrations = found.json()["migrations"]
        return migrations[0] if migrations and migrations[0]["status"] == status else None
    found: dict[str, Any] = wait_for(check, 60, f"no {status} migration of {sid}")
    return found


def test_cold_migration_between_processes(cloud: Cloud) -> None:
    (sid,) = cloud.boot("cold")
    source = cloud.wait_settled([sid])[sid]["OS-EXT-SRV-ATTR:host"]
    resp = cloud.api("POST", f"/servers/{sid}/action", json={"migrate": None})
    assert resp.status_code == 202, resp.text
    moved = _settled(cloud, sid, "VERIFY_RESIZE")
    assert moved["OS-EXT-SRV-ATTR:host"] != source
    resp = cloud.api("POST", f"/servers/{sid}/action", json={"confirmResize": None})
    assert resp.status_code == 204, resp.text
    _settled(cloud, sid, "ACTIVE")
    _migration(cloud, sid, "confirmed")
    cloud.delete_all()


def test_live_migration_between_processes_reports_progress(cloud: Cloud) -> None:
    (sid,) = cloud.boot("live")
    source = cloud.wait_settled([sid])[sid]["OS-EXT-SRV-ATTR:host"]
    resp = cloud.api("POST", f"/servers/{sid}/action", version="2.25", json={
        "os-migrateLive": {"host": None, "block_migration": "auto"}})
    assert resp.status_code == 202, resp.text
    _migration(cloud, sid, "completed")
    moved = _settled(cloud, sid, "ACTIVE")
    assert moved["OS-EXT-SRV-ATTR:host"] != source
    rows = cloud.sql("SELECT memory_total, memory_processed FROM migrations "
                     f"WHERE instance_uuid = '{sid}'")
    assert rows and rows[0][0] == rows[0][1] == 512 * 2**20  # every report was taken
    cloud.delete_all()
