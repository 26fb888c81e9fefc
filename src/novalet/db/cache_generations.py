"""Generation counters that keep the API processes' caches true to the database.

An API process keeps some records in memory (flavors, token revocation events).
Several API processes (`[api] workers`, or API hosts behind a load balancer)
each hold a copy, so a change made through one must reach the others' copies:
the writer bumps the counter of that kind of record once its change is
committed, and a reader compares the counter with the one its copy was read
at before using the copy (one primary-key read). A reader that sees the new
counter reads the records after the change committed, so no copy outlives a
change its reader could have seen; bumping only after the commit is what makes
that so.

In a cloud of one process (the all-in-one `novalet up` on the in-process bus)
nobody else writes, and a local counter does the job without a query.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from novalet.db.engine import Database
from novalet.db.models import CacheGeneration


def shared(transport_url: str) -> bool:
    """Whether other processes may write what this one caches: in every cloud but
    the one-process cloud on the in-process bus."""
    return not transport_url.startswith("memory://")


async def read(db: Database, name: str) -> int:
    """The counter of `name`; 0 before its first bump."""
    async with db.transaction() as session:
        value = await session.scalar(
            select(CacheGeneration.generation).where(CacheGeneration.name == name))
    return int(value or 0)


async def bump(db: Database, name: str) -> None:
    """Move the counter of `name` on (call it after the change has committed)."""
    for _ in range(2):
        async with db.transaction() as session:
            result = await session.execute(
                update(CacheGeneration).where(CacheGeneration.name == name)
                .values(generation=CacheGeneration.generation + 1))
            if getattr(result, "rowcount", 0):
                return
        try:
            async with db.transaction() as session:
                session.add(CacheGeneration(name=name, generation=1))
            return
        except IntegrityError:
            continue  # another process made the row first: bump it


class Generation:
    """One kind of record's counter, as a cache holder sees it.

    shared: other processes write these records too (a multi-process cloud), so
    `current` reads the database; otherwise the counter is this process's own."""

    def __init__(self, db: Database, name: str, shared: bool) -> None:
        self.db = db
        self.name = name
        self.shared = shared
        self._local = 0

    async def current(self) -> int:
        if self.shared:
            return await read(self.db, self.name)
        return self._local

    async def bump(self) -> None:
        self._local += 1
        if self.shared:
            await bump(self.db, self.name)
