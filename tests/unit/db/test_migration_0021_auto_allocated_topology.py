"""Migration 0021: networks gain is_default (NULL for every existing one, a unique
index admitting one default), auto_allocated_topologies appears and goes with its
network; downgrading keeps every network and address row."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from novalet.db import migrate
from novalet.db.engine import Database
from tests.unit.db.test_migration_0015 import NOW, _count, _fill, database

__all__ = ["database"]


def _parent_of_0021(connection: Connection) -> str:
    script = ScriptDirectory.from_config(migrate._alembic_config(connection))
    parent = script.get_revision("0021").down_revision
    assert isinstance(parent, str)
    return parent


async def test_is_default_and_topologies(database: Database) -> None:
    async with database.engine.connect() as conn:
        parent = await conn.run_sync(_parent_of_0021)
    await migrate.sync(database, parent)
    async with database.engine.begin() as conn:
        await conn.run_sync(_fill, False)
        before = await conn.run_sync(_count, "fixed_ips")
        await conn.execute(sa.text(
            "INSERT INTO networks (uuid, label, description, shared, external, "
            "admin_state_up, port_security_enabled, enable_dhcp, bridge, multi_host, "
            "deleted, created_at) VALUES ('ext-b', 'b', '', false, true, true, true, "
            "false, '', false, false, :now)"), {"now": NOW})
    await migrate.sync(database, "0021")
    async with database.engine.begin() as conn:
        flags = (await conn.execute(sa.text("SELECT is_default FROM networks"))).scalars()
        assert set(flags) == {None}  # no network became the default
        await conn.execute(sa.text("UPDATE networks SET is_default = true WHERE uuid = 'ext-b'"))
        ids = dict((await conn.execute(sa.text("SELECT uuid, id FROM networks"))).all())
        await conn.execute(sa.text(
            "INSERT INTO auto_allocated_topologies (project_id, network_id, created_at) "
            "VALUES ('p1', :net, :now)"), {"net": ids["net-a"], "now": NOW})
    with pytest.raises(sa.exc.IntegrityError):  # a second default
        async with database.engine.begin() as conn:
            await conn.execute(sa.text(
                "UPDATE networks SET is_default = true WHERE uuid = 'net-a'"))
    async with database.engine.begin() as conn:  # the topology goes with its network
        await conn.execute(sa.text("DELETE FROM fixed_ips WHERE network_id = :n"),
                           {"n": ids["net-a"]})
        await conn.execute(sa.text("DELETE FROM virtual_interfaces"))
        await conn.execute(sa.text("DELETE FROM networks WHERE uuid = 'net-a'"))
        assert await conn.run_sync(_count, "auto_allocated_topologies") == 0
        await conn.execute(sa.text(
            "INSERT INTO auto_allocated_topologies (project_id, network_id, created_at) "
            "VALUES ('p2', :net, :now)"), {"net": ids["ext-b"], "now": NOW})
    await migrate.downgrade(database, parent)
    async with database.engine.connect() as conn:
        labels = sorted((await conn.execute(sa.text("SELECT label FROM networks"))).scalars())
        assert labels == ["b"]
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        columns = await conn.run_sync(
            lambda c: [col["name"] for col in sa.inspect(c).get_columns("networks")])
    assert "auto_allocated_topologies" not in tables and "is_default" not in columns
    assert before == 16
