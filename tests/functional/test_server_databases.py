"""The whole cloud on PostgreSQL and on MariaDB: migrated by `novalet manage db sync`
from an empty database, then a boot storm, paging, compare-and-swap conflicts and
deletes through the HTTP API. The servers come from scripts/backing-services.sh."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from novalet.db import flavors as db_flavors
from novalet.db import migrate, placement
from novalet.db.engine import Database
from novalet.db.models import FixedIp
from novalet.service.allinone import AllInOne
from tests import server_db
from tests.functional.conftest import Api, boot, ensure_image, make_conf, wait_for

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]
S = "/compute/v2.1/servers"
COUNT = 10
# urls.env name -> SQLAlchemy dialect the cloud must end up on
SERVERS = {"postgresql": ("NOVALET_TEST_PG_URL", "postgresql"),
           "mariadb": ("NOVALET_TEST_MYSQL_URL", "mysql")}


@pytest.fixture(scope="session")
def backing_urls() -> dict[str, str]:
    """Start PostgreSQL and MariaDB (a no-op when they run) and read their URLs."""
    started = subprocess.run(
        [str(REPO / "scripts/backing-services.sh"), "start", "postgresql", "mariadb"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert started.returncode == 0, started.stdout
    backing = Path(os.environ.get("NOVALET_BACKING_DIR") or REPO / ".state/backing")
    lines = (backing / "urls.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


async def _db_sync(url: str, state_dir: Path) -> None:
    """`novalet manage db sync` in its own process, as an operator runs it."""
    conf = state_dir / "novalet.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {state_dir}\n[database]\nconnection = {url}\n")
    novalet = Path(sys.executable).parent / "novalet"
    proc = await asyncio.create_subprocess_exec(
        str(novalet), "manage", "db", "sync", "--config-file", str(conf),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode()


@pytest.fixture(params=list(SERVERS))
async def cloud(request: pytest.FixtureRequest, backing_urls: dict[str, str],
                state_dir: Path) -> AsyncIterator[AllInOne]:
    """A cloud on a fresh database of the server, migrated from empty to head."""
    env_name, dialect = SERVERS[request.param]
    async with server_db.fresh_database(backing_urls[env_name]) as url:
        await _db_sync(url, state_dir)
        check = Database(url)
        try:
            assert check.engine.dialect.name == dialect
            assert await migrate.is_current(check)
        finally:
            await check.close()
        aio = AllInOne(make_conf(state_dir, database__connection=url), in_process_http=True)
        await aio.start()
        try:
            yield aio
        finally:
            await aio.stop()


async def _boot_storm(api: Api) -> list[str]:
    """COUNT servers from one request, each with a fixed IP; their ids once ACTIVE."""
    image_id = await ensure_image(api)
    resp = await api.request("POST", S, version="2.37", json={"server": {
        "name": "storm", "imageRef": image_id, "flavorRef": "1", "networks": "auto",
        "min_count": COUNT, "max_count": COUNT, "return_reservation_id": True}})
    assert resp.status_code == 202, resp.text
    rid = resp.json()["reservation_id"]
    resp = await api.request("GET", f"{S}?reservation_id={rid}", version="2.37")
    ids = [s["id"] for s in resp.json()["servers"]]
    assert len(ids) == COUNT
    servers = await asyncio.gather(*(wait_for(api, i, "ACTIVE", timeout=30) for i in ids))
    addresses = [a["addr"] for s in servers for net in s["addresses"].values() for a in net]
    assert len(addresses) == COUNT and len(set(addresses)) == COUNT  # no address twice
    return ids


async def _pages(api: Api, query: str, limit: int) -> list[str]:
    """Every server id of the listing, fetched `limit` at a time by marker."""
    ids: list[str] = []
    while True:
        marker = f"&marker={ids[-1]}" if ids else ""
        resp = await api.request("GET", f"{S}?limit={limit}{query}{marker}")
        assert resp.status_code == 200, resp.text
        page = [s["id"] for s in resp.json()["servers"]]
        ids += page
        if len(page) < limit:
            return ids


async def _check_paging(api: Api, ids: list[str]) -> None:
    for query in ("", "&sort_key=display_name&sort_dir=asc", "&sort_key=created_at&sort_dir=asc"):
        whole = [s["id"] for s in (await api.request("GET", f"{S}?{query[1:]}")).json()["servers"]]
        assert sorted(whole) == sorted(ids)
        assert await _pages(api, query, 3) == whole, query


async def _check_stop_races(api: Api, server_id: str) -> None:
    """Five stops at once: the compare-and-swap on task_state lets exactly one in."""
    action = {"os-stop": None}
    replies = await asyncio.gather(*(api.request("POST", f"{S}/{server_id}/action", json=action)
                                     for _ in range(5)))
    assert sorted(r.status_code for r in replies) == [202, 409, 409, 409, 409]
    await wait_for(api, server_id, "SHUTOFF")
    resp = await api.request("POST", f"{S}/{server_id}/action", json=action)
    assert resp.status_code == 409 and "stop" in resp.text


async def _delete_all(api: Api, ids: list[str]) -> None:
    replies = await asyncio.gather(*(api.request("DELETE", f"{S}/{i}") for i in ids))
    assert {r.status_code for r in replies} == {204}
    for server_id in ids:
        for _ in range(500):
            resp = await api.request("GET", f"{S}/{server_id}")
            if resp.status_code == 404:
                break
            await asyncio.sleep(0.02)
        assert resp.status_code == 404, resp.text


async def _assert_nothing_held(db: Database, ids: list[str]) -> None:
    for summary in await placement.summaries(db):
        assert summary.used == {}, summary
    for server_id in ids:
        assert await placement.allocations_of(db, server_id) == {}
    async with db.transaction() as s:
        held = await s.scalar(select(func.count(FixedIp.id)).where(FixedIp.instance_uuid.in_(ids)))
    assert held == 0


async def test_boot_page_conflict_delete(api: Api) -> None:
    ids = await _boot_storm(api)
    await _check_paging(api, ids)
    await _check_stop_races(api, ids[0])
    await _delete_all(api, ids)
    await _assert_nothing_held(api.cloud.services.db, ids)


async def test_stored_values_read_back_as_on_sqlite(api: Api) -> None:
    """'Web' and 'web' are two key pairs (MariaDB's default *_ci collation would make
    them one), timestamps keep their microseconds (DATETIME(6)) and floats their
    digits (MySQL's FLOAT has six)."""
    for name in ("Web", "web"):
        resp = await api.request("POST", "/compute/v2.1/os-keypairs",
                                 json={"keypair": {"name": name}})  # generated: before 2.92
        assert resp.status_code == 200, resp.text
    resp = await api.request("GET", "/compute/v2.1/os-keypairs/web")
    assert resp.json()["keypair"]["name"] == "web"
    resp = await api.request("POST", "/compute/v2.1/flavors", user="admin", json={"flavor": {
        "name": "precise", "id": "precise", "ram": 512, "vcpus": 1, "disk": 1,
        "rxtx_factor": 1.23456789}})
    assert resp.status_code == 200, resp.text
    db = api.cloud.services.db
    flavor = await db_flavors.get(db, "precise")
    assert flavor is not None and flavor.rxtx_factor == 1.23456789
    async with db.transaction() as s:
        stamps = list((await s.execute(select(FixedIp.created_at))).scalars())
    assert any(stamp.microsecond for stamp in stamps)


async def test_nulls_sort_first_ascending_as_on_sqlite(api: Api) -> None:
    """Reproducer: PostgreSQL sorts NULLs last ascending, so paging servers by a
    nullable key (launched_at: a failed build has none) skipped or repeated servers."""
    first = (await boot(api, "first"))["id"]
    failed = (await boot(api, "failed", metadata={"fake_spawn_error": "no"}, wait="ERROR"))["id"]
    last = (await boot(api, "last"))["id"]
    for direction, expected in (("asc", [failed, first, last]), ("desc", [last, first, failed])):
        query = f"&sort_key=launched_at&sort_dir={direction}"
        assert await _pages(api, query, 1) == expected, direction


async def test_a_long_ipv6_access_address_fits_its_column(api: Api) -> None:
    """Reproducer: Tempest's accessIPv6, written out in full (41 characters), was a
    500 on PostgreSQL (VARCHAR(39)); it is stored shortened, as Nova stores it."""
    server = await boot(api, "v6", accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2")
    shown = (await api.request("GET", f"{S}/{server['id']}")).json()["server"]
    assert shown["accessIPv6"] == "::babe:dc0c:1602"
