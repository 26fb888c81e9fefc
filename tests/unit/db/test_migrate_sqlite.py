"""migrate.sync on SQLite runs every revision in one transaction with foreign keys
off: rows orphaned before it are refused (nothing migrated), a failure in the
middle of a table rebuild leaves nothing behind (no `_alembic_tmp_*` table) and a
retry succeeds, a copy an older release left behind is dropped, and orphans a
migration makes undo it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.ddl.impl import DefaultImpl
from sqlalchemy.engine import Connection

from novalet.db import migrate
from novalet.db.engine import Database
from tests.unit.db.test_migration_0015 import _count, _fill


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    await migrate.sync(database, "0013")
    async with database.engine.begin() as conn:
        await conn.run_sync(_fill, False)
    try:
        yield database
    finally:
        await database.close()


def _state(connection: Connection) -> tuple[str | None, set[str], int]:
    """The revision, the tables, how many fixed_ips."""
    tables = set(sa.inspect(connection).get_table_names())
    return migrate._revision(connection), tables, _count(connection, "fixed_ips")


async def _read(db: Database) -> tuple[str | None, set[str], int]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_state)


async def _foreign_keys(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one())


async def _raw(db: Database, *statements: str) -> None:
    """Statements run with foreign keys off, as a careless operator might."""
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
        for statement in statements:
            await conn.exec_driver_sql(statement)
        await conn.commit()
        await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        await conn.commit()


async def test_orphans_from_before_are_refused_and_nothing_migrates(db: Database) -> None:
    await _raw(db, "INSERT INTO fixed_ips (address, network_id, reserved, allocated, leased, "
                   "created_at) VALUES ('10.99.0.1', 999, 0, 0, 0, '2026-01-01 00:00:00')")
    with pytest.raises(migrate.MigrationError) as caught:
        await migrate.sync(db)
    assert "already has rows whose parent row is missing" in str(caught.value)
    assert "fixed_ips row" in str(caught.value) and "(no networks row)" in str(caught.value)
    revision, tables, fixed = await _read(db)
    assert (revision, "subnets" in tables, fixed) == ("0013", False, 17)
    assert await _foreign_keys(db) == 1


async def test_a_failed_rebuild_leaves_nothing_and_a_retry_succeeds(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """0014 rebuilds `networks`: copy to _alembic_tmp_networks, drop, rename. The
    drop fails here, after the copy was made."""
    drop = DefaultImpl.drop_table

    def failing_drop(self: DefaultImpl, table: sa.Table, **kw: Any) -> None:
        if table.name == "networks":
            raise RuntimeError("injected: the disk went away")
        drop(self, table, **kw)

    monkeypatch.setattr(DefaultImpl, "drop_table", failing_drop)
    with pytest.raises(RuntimeError, match="injected"):
        await migrate.sync(db)
    revision, tables, fixed = await _read(db)
    assert (revision, fixed) == ("0013", 16)
    assert not [t for t in tables if t.startswith("_alembic_tmp")] and "subnets" not in tables
    assert await _foreign_keys(db) == 1
    monkeypatch.undo()
    await migrate.sync(db)
    _, tables, fixed = await _read(db)
    assert fixed == 16 and "subnets" in tables
    assert await migrate.is_current(db)


async def test_a_copy_an_older_release_left_is_dropped(db: Database) -> None:
    await _raw(db, "CREATE TABLE _alembic_tmp_networks (id INTEGER PRIMARY KEY)")
    await migrate.sync(db)
    _, tables, fixed = await _read(db)
    assert "_alembic_tmp_networks" not in tables and fixed == 16
    assert await migrate.is_current(db)


async def test_a_copy_whose_table_is_gone_is_refused(db: Database) -> None:
    await _raw(db, "CREATE TABLE _alembic_tmp_lost (id INTEGER PRIMARY KEY)")
    with pytest.raises(migrate.MigrationError, match=r"Table lost is missing .* RENAME TO lost"):
        await migrate.sync(db)
    revision, tables, _ = await _read(db)
    assert revision == "0013" and "_alembic_tmp_lost" in tables


async def test_orphans_a_migration_makes_roll_it_back(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration that deletes parents without their children (nothing cascades
    while foreign keys are off) is undone whole."""
    run = migrate._run

    def orphaning(connection: Connection, step: migrate.Step, revision: str) -> None:
        run(connection, step, revision)
        connection.exec_driver_sql("DELETE FROM networks")

    monkeypatch.setattr(migrate, "_run", orphaning)
    with pytest.raises(migrate.MigrationError, match="left rows without their parent: "
                                                     ".*fixed_ips row 1 .* and 13 more.* still at 0013"):
        await migrate.sync(db)
    revision, tables, fixed = await _read(db)
    assert (revision, "subnets" in tables, fixed) == ("0013", False, 16)
    async with db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT COUNT(*) FROM networks")).scalar_one() == 1
