"""Database access for console tokens (kept as hashes; see console/tokens.py)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from novalet.db.engine import Database
from novalet.db.models import ConsoleAuthToken, Instance


async def add(db: Database, token: ConsoleAuthToken, now: int) -> None:
    """Store a token, dropping every token expired by `now` on the way."""
    async with db.transaction() as s:
        await s.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.expires <= now))
        s.add(token)


async def find(db: Database, token_hash: str, now: int) -> ConsoleAuthToken | None:
    """The unexpired token with this hash."""
    async with db.transaction() as s:
        return (await s.execute(select(ConsoleAuthToken).where(
            ConsoleAuthToken.token_hash == token_hash,
            ConsoleAuthToken.expires > now))).scalar_one_or_none()


async def live_of_type(db: Database, console_type: str, now: int) -> list[ConsoleAuthToken]:
    """The unexpired tokens of one console type (native VNC checks try each)."""
    async with db.transaction() as s:
        return list((await s.execute(select(ConsoleAuthToken).where(
            ConsoleAuthToken.console_type == console_type,
            ConsoleAuthToken.expires > now))).scalars())


async def instance_on(db: Database, uuid: str) -> str | None:
    """The host of the instance while it exists (None once deleted or unplaced)."""
    async with db.transaction() as s:
        return (await s.execute(select(Instance.host).where(
            Instance.uuid == uuid, Instance.deleted.is_(False)))).scalar_one_or_none()


async def forget_instance(s: AsyncSession, uuid: str) -> None:
    """Drop the instance's tokens (in the caller's transaction: deleting it, moving it)."""
    await s.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.instance_uuid == uuid))
