"""The database engine and the one way to open a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (AsyncEngine, AsyncSession, async_sessionmaker,
                                    create_async_engine)

from novalet.db import sqlite_inline

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
                  "mysql": "mysql+asyncmy", "mariadb": "mysql+asyncmy"}


def async_url(url: str) -> str:
    """The same database URL with an asyncio driver (sqlite:// -> sqlite+aiosqlite://,
    mysql:// -> mysql+asyncmy://...?charset=utf8mb4)."""
    parsed = make_url(url)
    if "+" not in parsed.drivername and parsed.drivername in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        # Four-byte UTF-8 (names may hold emoji); the tables are utf8mb4 too.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def _server_options(url: str) -> dict[str, Any]:
    """Engine options for PostgreSQL and MySQL/MariaDB: a real pool, and READ
    COMMITTED on both (PostgreSQL's default). Under MySQL's default, REPEATABLE
    READ, a transaction keeps reading the snapshot of its first read: one that lost
    an insert race can't see the winner's row (security_groups.ensure_default_group
    failed so), and compare-and-swap retries (db/network.py) re-read rows already
    taken. pool_recycle: MySQL drops connections idle past its wait_timeout."""
    options: dict[str, Any] = {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}
    if make_url(url).get_backend_name() in ("mysql", "mariadb"):
        options.update(isolation_level="READ COMMITTED", pool_recycle=3600)
    return options


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """An engine plus a session factory. SQLite gets a single connection driven
    inline (db/sqlite_inline.py), so its transactions are serialised in-process
    and never meet 'database is locked'."""

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = make_url(self.url).database or ":memory:"
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=120,
                          async_creator=lambda: sqlite_inline.connect(path))
        else:
            kwargs.update(_server_options(self.url))
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()


def rows_matched(result: Any) -> int:
    """Rows an UPDATE or DELETE matched (not only those it changed: on MySQL the
    dialect's CLIENT_FOUND_ROWS flag makes rowcount mean that too)."""
    return int(result.rowcount)
