"""Migration 0020: the tags table, one row per (kind, resource, tag); its downgrade
drops it and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from novalet.db import migrate
from novalet.db.engine import Database
from tests import server_db


def _to(revision: str, down: bool = False) -> object:
    def run(connection: Connection) -> None:
        config = migrate._alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)
    return run


def _parent_of_0020(connection: Connection) -> str:
    script = ScriptDirectory.from_config(migrate._alembic_config(connection))
    parent = script.get_revision("0020").down_revision
    assert isinstance(parent, str)
    return parent


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


INSERT = sa.text("INSERT INTO tags (resource_type, resource_id, tag) VALUES "
                 "('networks', 'n1', :tag)")


async def test_tags_table_up_and_down(tmp_path: Path) -> None:
    """On SQLite, or on the NOVALET_TEST_DATABASE server."""
    server = server_db.server_url()
    url = await server_db.create_database(server) if server else \
        f"sqlite:///{tmp_path / 'old.sqlite'}"
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            parent = await conn.run_sync(_parent_of_0020)
            await conn.run_sync(_to(parent))
            before = await conn.run_sync(_tables)
            assert "tags" not in before
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0020"))
            await conn.execute(INSERT, {"tag": "red"})
            await conn.execute(INSERT, {"tag": "t" * 60})
        with pytest.raises(IntegrityError):  # a tag once per resource
            async with db.engine.begin() as conn:
                await conn.execute(INSERT, {"tag": "red"})
        async with db.engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT tag FROM tags ORDER BY tag"))).all()
            assert [r[0] for r in rows] == ["red", "t" * 60]
        async with db.engine.begin() as conn:
            await conn.run_sync(_to(parent, down=True))
            assert await conn.run_sync(_tables) == before
    finally:
        await db.close()
        if server:
            await server_db.drop_database(server, url)
