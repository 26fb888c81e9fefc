"""Schema migrations through Alembic: `novalet manage db sync` and the check at start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from novalet.db.engine import Database

_HERE = Path(__file__).parent / "migrations"


def _alembic_config(connection: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(_alembic_config(connection), revision)


def _is_current(connection: Connection) -> bool:
    head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    return MigrationContext.configure(connection).get_current_revision() == head


async def sync(db: Database, revision: str = "head") -> None:
    """Bring the schema to the newest revision (or to `revision`)."""
    if db.is_sqlite:
        await _sync_sqlite(db, revision)
        return
    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


async def _sync_sqlite(db: Database, revision: str) -> None:
    """SQLite alters a table by copying it to a new one and dropping the old (batch
    mode): with foreign keys on, dropping `networks` would delete its `fixed_ips`
    (ON DELETE CASCADE). So migrate with them off (a pragma that only takes effect
    outside a transaction), check the result, and turn them on again."""
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
        try:
            await conn.run_sync(_upgrade, revision)
            broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(f"migration left rows without their parent: {broken[:5]}")
            await conn.commit()
        finally:
            await conn.rollback()
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


async def is_current(db: Database) -> bool:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_is_current)
