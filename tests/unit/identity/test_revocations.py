"""Revocation events: what they match, and how long another process's copy may lag."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet.common import timeutils
from novalet.db import identity as records
from novalet.db import migrate
from novalet.db.engine import Database
from novalet.identity.revocations import Event, Revocations, TokenRevoked
from novalet.identity.tokens import TokenData, TokenProvider


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'r.db'}")
    await migrate.sync(database)
    yield database
    await database.close()


def token(tmp_path: Path, **fields: object) -> TokenData:
    values: dict[str, object] = {
        "user_id": "u1", "user_name": "u", "user_domain_id": "default",
        "project_id": "p1", "project_name": "p", "project_domain_id": "default",
        "roles": [], "methods": ["password"]}
    values.update(fields)
    return TokenProvider(tmp_path / "keys", 3600).issue(None, **values)[1]


def test_an_event_matches_on_every_field_it_names(tmp_path: Path) -> None:
    data = token(tmp_path)
    issued = timeutils.parse_isotime(data.issued_at)
    later = issued + dt.timedelta(seconds=1)
    assert Event(later, user_id="u1").matches(data, issued)
    assert Event(later, user_id="u1", project_id="p1").matches(data, issued)
    assert not Event(later, user_id="u1", project_id="p2").matches(data, issued)
    assert Event(later, audit_id=data.audit_id).matches(data, issued)
    assert not Event(later, app_cred_id="a1").matches(data, issued)
    assert Event(issued, user_id="u1").matches(data, issued)  # same millisecond
    # a token issued after the event is not revoked by it
    assert not Event(issued - dt.timedelta(seconds=1), user_id="u1").matches(data, issued)


async def test_a_process_sees_another_ones_events_after_the_refresh(
        db: Database, tmp_path: Path) -> None:
    here = Revocations(db, 3600, refresh=60)
    there = Revocations(db, 3600, refresh=60)
    data = token(tmp_path)
    await here.check(data)
    await there.revoke(user_id="u1")
    with pytest.raises(TokenRevoked):
        await there.check(data)  # at once in the process that revoked
    await here.check(data)  # the other one's copy is younger than `refresh`
    here._loaded_at -= 61
    with pytest.raises(TokenRevoked):
        await here.check(data)


async def test_events_older_than_the_token_lifetime_are_pruned(db: Database) -> None:
    revocations = Revocations(db, 60, refresh=0)
    old = timeutils.utcnow() - dt.timedelta(hours=1)
    await records.add_revocations(db, [{"issued_before": old, "user_id": "x",
                                        "revoked_at": old}], prune_before=old)
    await revocations.revoke(user_id="y")
    rows = await records.list_revocations(db, old - dt.timedelta(days=1))
    assert [r[1] for r in rows] == ["y"]
