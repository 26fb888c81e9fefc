"""The Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from novalet.db import migrate
from novalet.db.engine import Database
from novalet.db.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_equals_models(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'schema.db'}")
    try:
        await migrate.sync(database)
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await database.close()
    assert differences == [], differences
