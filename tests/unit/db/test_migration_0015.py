"""Migration 0015: a database at 0014 with networks gets one subnet per network that
has a cidr, its pools being the addresses the allocator hands out; on SQLite, and on
PostgreSQL and MariaDB when scripts/backing-services.sh runs them."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from novalet.db import migrate
from novalet.db.engine import Database
from tests import server_db
from tests.conftest import running_backing_servers

REPO = Path(__file__).resolve().parents[3]
SERVERS = {"postgresql": "NOVALET_TEST_PG_URL", "mariadb": "NOVALET_TEST_MYSQL_URL"}
NOW = dt.datetime(2026, 12, 1, 12, 0)


def _server_url(name: str) -> str:
    backing = Path(os.environ.get("NOVALET_BACKING_DIR") or REPO / ".state/backing")
    if name not in running_backing_servers(backing):
        pytest.skip(f"{name} is not running (make services starts it)")
    lines = (backing / "urls.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)[SERVERS[name]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers),
                        pytest.param("mariadb", marks=pytest.mark.servers)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'at-0014.db'}")
        try:
            yield db
        finally:
            await db.close()
        return
    async with server_db.fresh_database(_server_url(request.param)) as url:
        db = Database(url)
        try:
            yield db
        finally:
            await db.close()


def _network(uuid: str, cidr: str | None, **values: Any) -> dict[str, Any]:
    base = cidr.rsplit(".", 1)[0] if cidr else None
    return {"uuid": uuid, "label": uuid, "cidr": cidr, "bridge": f"br-{uuid}",
            "gateway": f"{base}.1" if base else None,
            "netmask": "255.255.255.240" if cidr else None,
            "broadcast": f"{base}.15" if base else None,
            "dhcp_start": f"{base}.2" if base else None, "dns1": None, "dns2": None,
            "project_id": "p1", "multi_host": False, "deleted": False, "created_at": NOW,
            **values}


def _fixed(network_id: int, last: int, reserved: bool = False, **values: Any
           ) -> dict[str, Any]:
    return {"address": f"10.9.0.{last}", "network_id": network_id, "reserved": reserved,
            "allocated": False, "leased": False, "created_at": NOW, "instance_uuid": None,
            "host": None, **values}


def _json(value: Any) -> Any:
    """A JSON column as reflected: SQLite and MariaDB give its text."""
    return json.loads(value) if isinstance(value, str) else value


def _fill(connection: Connection, without_subnet: bool = True) -> None:
    """A /28 whose rows say: .0, .1 (gateway) and .15 reserved; .5 allocated (with
    its NIC); .9 a multi_host host's own address; .12 reserved by an admin. And
    (from 0014) a network without a subnet."""
    meta = sa.MetaData()
    meta.reflect(connection, only=["networks", "fixed_ips", "virtual_interfaces"])
    networks, fixed_ips = meta.tables["networks"], meta.tables["fixed_ips"]
    connection.execute(networks.insert(), [
        _network("net-a", "10.9.0.0/28", dns1="192.0.2.53", dns2="192.0.2.54")]
        + ([_network("net-b", None, project_id="p2")] if without_subnet else []))
    network_id = connection.execute(sa.select(networks.c.id).where(
        networks.c.uuid == "net-a")).scalar_one()
    rows = []
    for last in range(16):
        row = _fixed(network_id, last, reserved=last in (0, 1, 12, 15))
        if last == 5:
            row.update(allocated=True, instance_uuid="vm-1", host="h1")
        if last == 9:
            row.update(reserved=True, host="h2")
        rows.append(row)
    connection.execute(fixed_ips.insert(), rows)
    connection.execute(meta.tables["virtual_interfaces"].insert().values(
        uuid="vif-1", address="fa:16:3e:00:00:05", instance_uuid="vm-1",
        network_id=network_id, created_at=NOW))


def _count(connection: Connection, table: str) -> int:
    return int(connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _read(connection: Connection) -> tuple[list[Any], list[Any]]:
    meta = sa.MetaData()
    meta.reflect(connection, only=["networks", "subnets"])
    networks, subnets = meta.tables["networks"], meta.tables["subnets"]
    return (connection.execute(sa.select(subnets, networks.c.uuid.label("net")).join(
                networks, networks.c.id == subnets.c.network_id)).all(),
            connection.execute(sa.select(networks.c.uuid, networks.c.enable_dhcp).order_by(
                networks.c.uuid)).all())


async def test_backfills_one_subnet_per_network_with_a_cidr(database: Database) -> None:
    await migrate.sync(database, "0014")
    async with database.engine.begin() as conn:
        await conn.run_sync(_fill)
    await migrate.sync(database)
    async with database.engine.connect() as conn:
        subnets, networks = await conn.run_sync(_read)
    assert [(n.uuid, bool(n.enable_dhcp)) for n in networks] == [("net-a", True),
                                                                 ("net-b", True)]
    assert len(subnets) == 1
    subnet = subnets[0]
    assert subnet.net == "net-a" and len(subnet.uuid) == 36
    assert (subnet.name, subnet.description, subnet.project_id, subnet.ip_version) == (
        "", "", "p1", 4)
    assert (subnet.cidr, subnet.gateway_ip, bool(subnet.enable_dhcp)) == (
        "10.9.0.0/28", "10.9.0.1", True)
    # the allocated .5 and the host's .9 came from the pool; the admin's .12 did not
    assert _json(subnet.allocation_pools) == [{"start": "10.9.0.2", "end": "10.9.0.11"},
                                       {"start": "10.9.0.13", "end": "10.9.0.14"}]
    assert _json(subnet.dns_nameservers) == ["192.0.2.53", "192.0.2.54"]
    assert _json(subnet.host_routes) == []
    assert subnet.created_at is not None


async def test_upgrading_networks_keeps_their_addresses_and_nics(database: Database) -> None:
    """0014 and 0015 alter `networks`, which SQLite does by copying and dropping the
    table: its fixed_ips went with it (ON DELETE CASCADE) until migrate.sync turned
    foreign keys off while migrating."""
    await migrate.sync(database, "0013")
    async with database.engine.begin() as conn:
        await conn.run_sync(_fill, False)
    await migrate.sync(database)
    async with database.engine.connect() as conn:
        counts = [await conn.run_sync(_count, table)
                  for table in ("fixed_ips", "virtual_interfaces", "subnets")]
    assert counts == [16, 1, 1]
    if database.is_sqlite:
        async with database.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
