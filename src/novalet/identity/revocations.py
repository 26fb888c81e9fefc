"""Token revocation: events in the database, matched against tokens as they are validated.

Tokens are self-contained, so revoking one means remembering which tokens no
longer count: an event names any of a user, a project, an audit id (a token and
those made from it) or an application credential, and revokes every matching
token issued up to its time. Every request validates a token, so each process
keeps the events in memory and rereads them when its copy is older than
`refresh` seconds, or at once when the "revocations" generation
(db/cache_generations.py) moved: every revocation bumps it after its commit and
every check compares it first, so a token revoked through one API process is
refused at once by every other (`refresh` remains the bound should a bump ever be
lost). Events older than the token lifetime match no live token and are pruned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from novalet.common import timeutils
from novalet.db import identity as records
from novalet.db.cache_generations import Generation
from novalet.db.engine import Database
from novalet.identity.tokens import TokenData, TokenNotValid


_FIELDS = ("audit_id", "app_cred_id", "user_id", "project_id")


def _keys_of(token: TokenData) -> list[tuple[str, str | None]]:
    return [("", None), ("audit_id", token.audit_id), ("app_cred_id", token.app_cred_id),
            ("user_id", token.user_id), ("project_id", token.project_id)]


@dataclass(frozen=True)
class Event:
    issued_before: dt.datetime
    user_id: str | None = None
    project_id: str | None = None
    audit_id: str | None = None
    app_cred_id: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        for name in _FIELDS:
            if getattr(self, name) is not None:
                return name, getattr(self, name)
        return "", None  # names nothing: matches every token

    def matches(self, token: TokenData, issued_at: dt.datetime) -> bool:
        # A token issued in the event's own millisecond counts as revoked: token
        # times have millisecond precision, and erring this way only costs a re-login.
        return (issued_at <= self.issued_before
                and self.user_id in (None, token.user_id)
                and self.project_id in (None, token.project_id)
                and self.audit_id in (None, token.audit_id)
                and self.app_cred_id in (None, token.app_cred_id))


class TokenRevoked(TokenNotValid):
    msg_fmt = "The request you have made requires authentication."


class Revocations:
    def __init__(self, db: Database, token_ttl: int, refresh: float,
                 generation: Generation | None = None) -> None:
        self.db = db
        self.generation = generation or Generation(db, "revocations", shared=False)
        self._generation: int | None = None  # the generation the events were read at
        self.ttl = dt.timedelta(seconds=token_ttl)
        self.refresh = refresh
        # Events by the first field each names, so a check looks only at the
        # events that name one of the token's own values.
        self._events: dict[tuple[str, str | None], list[Event]] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def revoke(self, **fields: str | None) -> None:
        """Revoke every token issued until now that matches all of `fields`
        (user_id, project_id, audit_id, app_cred_id)."""
        await self.revoke_many([fields])

    async def revoke_many(self, matches: Sequence[Mapping[str, str | None]]) -> None:
        now = timeutils.utcnow()
        events = [Event(issued_before=now, **m) for m in matches]
        if not events:
            return
        await records.add_revocations(
            self.db, [{"issued_before": e.issued_before, "user_id": e.user_id,
                       "project_id": e.project_id, "audit_id": e.audit_id,
                       "app_cred_id": e.app_cred_id, "revoked_at": now} for e in events],
            prune_before=now - self.ttl)
        for event in events:
            self._events.setdefault(event.key, []).append(event)
        await self.generation.bump()

    async def check(self, token: TokenData) -> None:
        """TokenRevoked (401) when an event revokes the token."""
        generation = await self.generation.current()
        if (generation != self._generation
                or time.monotonic() - self._loaded_at > self.refresh):
            await self._reload(generation)
        issued_at = timeutils.parse_isotime(token.issued_at)
        for key in _keys_of(token):
            for event in self._events.get(key, ()):
                if event.matches(token, issued_at):
                    raise TokenRevoked()

    async def _reload(self, generation: int) -> None:
        async with self._lock:
            if (self._generation == generation
                    and time.monotonic() - self._loaded_at <= self.refresh):
                return  # another request reloaded while this one waited
            started = time.monotonic()
            rows = await records.list_revocations(self.db, timeutils.utcnow() - self.ttl)
            events: dict[tuple[str, str | None], list[Event]] = {}
            for row in rows:
                event = Event(*row)
                events.setdefault(event.key, []).append(event)
            self._events = events
            self._loaded_at = started
            self._generation = generation
