"""migrate.downgrade: back to 0013 keeps every fixed_ips and floating_ips row (on
SQLite the rebuilds of `networks` ran with foreign keys on under plain Alembic and
cascaded into them), and 0014's downgrade drops networks that never had a subnet
(the release before has none); on SQLite, and on PostgreSQL and MariaDB when
scripts/backing-services.sh runs them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from novalet.db import migrate
from novalet.db.engine import Database
from tests.unit.db.test_migration_0015 import NOW, _count, _fill, database

__all__ = ["database"]


def _floating(connection: Connection) -> None:
    """A floating IP bound to net-a's .5 (the allocated address)."""
    meta = sa.MetaData()
    meta.reflect(connection, only=["fixed_ips", "floating_ips"])
    fixed_ips = meta.tables["fixed_ips"]
    fixed_id = connection.execute(sa.select(fixed_ips.c.id).where(
        fixed_ips.c.address == "10.9.0.5")).scalar_one()
    connection.execute(meta.tables["floating_ips"].insert().values(
        address="203.0.113.7", pool="public", project_id="p1", fixed_ip_id=fixed_id,
        host="h1", auto_assigned=False, created_at=NOW))


def _labels(connection: Connection) -> list[str]:
    return sorted(connection.execute(sa.text("SELECT label FROM networks")).scalars())


async def _counts(db: Database) -> list[int]:
    async with db.engine.connect() as conn:
        return [await conn.run_sync(_count, table)
                for table in ("fixed_ips", "floating_ips", "virtual_interfaces")]


async def test_down_to_0013_keeps_addresses_and_floating_ips(database: Database) -> None:
    await migrate.sync(database, "0013")
    async with database.engine.begin() as conn:
        await conn.run_sync(_fill, False)
        await conn.run_sync(_floating)
    await migrate.sync(database)
    assert await _counts(database) == [16, 1, 1]
    await migrate.downgrade(database, "0013")
    assert await _counts(database) == [16, 1, 1]
    async with database.engine.connect() as conn:
        assert await conn.run_sync(migrate._revision) == "0013"
    await migrate.sync(database)  # and up again
    assert await _counts(database) == [16, 1, 1]


async def test_down_past_0014_drops_networks_without_a_subnet(database: Database) -> None:
    await migrate.sync(database, "0014")
    async with database.engine.begin() as conn:
        await conn.run_sync(_fill)  # net-a with a cidr, net-b without
    await migrate.sync(database)
    await migrate.downgrade(database, "0013")
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_labels) == ["net-a"]
        assert await conn.run_sync(migrate._revision) == "0013"
    assert (await _counts(database))[0] == 16


async def test_a_nic_on_a_network_without_subnet_refuses_the_downgrade(
        database: Database) -> None:
    await migrate.sync(database, "0014")
    async with database.engine.begin() as conn:
        await conn.run_sync(_fill)
        await conn.execute(sa.text(
            "INSERT INTO virtual_interfaces (uuid, address, instance_uuid, network_id, "
            "created_at) SELECT 'vif-2', 'fa:16:3e:00:00:06', 'vm-2', id, '2026-01-01' "
            "FROM networks WHERE label = 'net-b'"))
    await migrate.sync(database)
    with pytest.raises(migrate.MigrationError, match=r"\('net-b', 'vm-2'\)"):
        await migrate.downgrade(database, "0013")
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_labels) == ["net-a", "net-b"]
    assert await _counts(database) == [16, 0, 2]
