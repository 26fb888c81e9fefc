"""Schema migrations through Alembic: `novalet manage db sync` (and downgrade) and the
check at start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from novalet.db.engine import Database

LOG = logging.getLogger(__name__)
_HERE = Path(__file__).parent / "migrations"
_TMP = "_alembic_tmp_"
"""The prefix of the copy Alembic's batch mode builds when it rebuilds a table."""

Step = Callable[[AlembicConfig, str], None]


class MigrationError(RuntimeError):
    """A migration was refused or undone; the database is at its old revision."""


def _alembic_config(connection: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def _run(connection: Connection, step: Step, revision: str) -> None:
    step(_alembic_config(connection), revision)


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _is_current(connection: Connection) -> bool:
    head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    return _revision(connection) == head


async def sync(db: Database, revision: str = "head") -> None:
    """Bring the schema to the newest revision (or to `revision`)."""
    await _migrate(db, command.upgrade, revision)


async def downgrade(db: Database, revision: str) -> None:
    """Take the schema back to `revision`, the same way (on SQLite: one transaction
    with foreign keys off, so no table rebuild cascades into its children)."""
    await _migrate(db, command.downgrade, revision)


async def _migrate(db: Database, step: Step, revision: str) -> None:
    if db.is_sqlite:
        await _migrate_sqlite(db, step, revision)
        return
    # PostgreSQL: one transaction (its DDL is transactional). MySQL commits each
    # DDL statement itself: a failed migration stops at the last revision done.
    async with db.engine.begin() as conn:
        await conn.run_sync(_run, step, revision)


async def _migrate_sqlite(db: Database, step: Step, revision: str) -> None:
    """SQLite alters a table by copying it to a new one and dropping the old (batch
    mode): with foreign keys on, dropping `networks` would delete its `fixed_ips`
    (ON DELETE CASCADE). So migrate with them off (a pragma that only takes effect
    outside a transaction), inside ONE explicit transaction: the sqlite3 module's
    default mode would commit each CREATE TABLE by itself (leaving a half-built
    `_alembic_tmp_*` table after a failure) and Alembic would commit each
    revision. Foreign keys are checked before (rows already orphaned: refused,
    so the migration is not blamed) and after; any failure rolls everything back."""
    async with db.engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
        legacy = driver.isolation_level
        driver.isolation_level = None  # the module opens no transaction of its own
        try:
            await conn.exec_driver_sql("BEGIN")
            await _migrate_in_transaction(conn, step, revision)
            await conn.commit()
        finally:
            await conn.rollback()  # a no-op after the commit
            driver.isolation_level = legacy
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


async def _migrate_in_transaction(conn: AsyncConnection, step: Step, revision: str) -> None:
    before = await conn.run_sync(_revision)
    await _drop_leftover_copies(conn)
    orphans = await _orphans(conn)
    if orphans:
        raise MigrationError(
            f"The database (at revision {before}) already has rows whose parent row is "
            f"missing: {orphans}. Nothing was migrated. Delete or repair those rows, then "
            "run `novalet manage db sync` again.")
    await conn.run_sync(_run, step, revision)
    orphans = await _orphans(conn)
    if orphans:
        raise MigrationError(
            f"Migrating from revision {before} to {revision} left rows without their "
            f"parent: {orphans}. It was rolled back; the database is still at {before}.")


async def _orphans(conn: AsyncConnection) -> str:
    """The first few rows `PRAGMA foreign_key_check` reports, as text ('' if none)."""
    rows: list[Any] = list((await conn.exec_driver_sql("PRAGMA foreign_key_check")).all())
    shown = [f"{row[0]} row {row[1]} (no {row[2]} row)" for row in rows[:5]]
    return ", ".join(shown) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


async def _drop_leftover_copies(conn: AsyncConnection) -> None:
    """A copy a rebuild left behind (an older release migrated outside one
    transaction) makes the next rebuild of that table fail. While the table itself
    exists the copy is only a copy: drop it. Without the table, the copy may hold the
    only rows: refuse."""
    names = set((await conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table'")).scalars())
    for name in sorted(n for n in names if n.startswith(_TMP)):
        table = name[len(_TMP):]
        if table not in names:
            raise MigrationError(
                f"Table {table} is missing and {name} holds its rows, left by an "
                f"interrupted migration. Rename it back (ALTER TABLE {name} RENAME TO "
                f"{table}), then run `novalet manage db sync` again.")
        LOG.warning("Dropping %s, a copy of %s an interrupted migration left", name, table)
        await conn.exec_driver_sql(f'DROP TABLE "{name}"')


async def is_current(db: Database) -> bool:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_is_current)
