"""Fresh databases on a PostgreSQL or MySQL/MariaDB server for tests: one per test,
dropped after it. NOVALET_TEST_DATABASE (a server URL, as in the urls.env of
scripts/backing-services.sh) turns them on; without it tests use SQLite."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from novalet.db.engine import async_url

ENV = "NOVALET_TEST_DATABASE"


def server_url() -> str | None:
    """The server the tests should use, or None for SQLite."""
    return os.environ.get(ENV) or None


def _is_mysql(url: str) -> bool:
    return make_url(url).get_backend_name() in ("mysql", "mariadb")


async def _admin(server: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    engine = create_async_engine(async_url(server), poolclass=NullPool,
                                 isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_database(server: str) -> str:
    """A new, empty database on `server` (a URL whose user may create databases),
    as a URL."""
    name = f"novalet_test_{uuid.uuid4().hex[:12]}"
    charset = " CHARACTER SET utf8mb4" if _is_mysql(server) else ""
    await _admin(server, f"CREATE DATABASE {name}{charset}")
    return make_url(server).set(database=name).render_as_string(hide_password=False)


async def drop_database(server: str, url: str) -> None:
    """Drop a database create_database made on `server`, also while something is
    still connected to it."""
    name = make_url(url).database
    force = "" if _is_mysql(server) else " WITH (FORCE)"
    await _admin(server, f"DROP DATABASE IF EXISTS {name}{force}")


@asynccontextmanager
async def fresh_database(server: str) -> AsyncIterator[str]:
    """create_database, dropped on exit."""
    url = await create_database(server)
    try:
        yield url
    finally:
        await drop_database(server, url)
