"""Per-process caches of API processes stay true across processes: two services over
one database (as two API workers or hosts have) see each other's writes at once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.compute.flavors import FlavorNotFound, FlavorQuery, FlavorService, NewFlavor
from novalet.db import cache_generations, migrate
from novalet.db.cache_generations import Generation
from novalet.db.engine import Database
from novalet.identity.revocations import Revocations, TokenRevoked
from novalet.identity.tokens import TokenNotValid, TokenProvider

ADMIN = RequestContext(user_id="u-admin", project_id="p-admin", roles=["admin"])
ALICE = RequestContext(user_id="u-alice", project_id="p-alice", roles=["member"])
TOKEN_FIELDS: dict[str, Any] = {
    "user_id": "u1", "user_name": "u", "user_domain_id": "default", "project_id": "p1",
    "project_name": "p", "project_domain_id": "default", "roles": [], "methods": ["password"]}


@pytest.fixture
async def two_dbs(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """Two handles on one database: what two API processes hold."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    first, second = Database(url), Database(url)
    await migrate.sync(first)
    yield first, second
    await first.close()
    await second.close()


def flavors(db: Database) -> FlavorService:
    return FlavorService(db, Generation(db, "flavors", shared=True))


async def test_bump_counts_up_from_zero(two_dbs: tuple[Database, Database]) -> None:
    db, _ = two_dbs
    assert await cache_generations.read(db, "x") == 0
    await cache_generations.bump(db, "x")
    await cache_generations.bump(db, "x")
    assert await cache_generations.read(db, "x") == 2


async def test_flavor_changed_through_one_api_process_is_seen_at_once_by_another(
        two_dbs: tuple[Database, Database]) -> None:
    one, other = flavors(two_dbs[0]), flavors(two_dbs[1])
    await one.create(NewFlavor(name="small", memory_mb=256, vcpus=1, root_gb=1,
                               flavorid="f1", is_public=False))
    # the other process fills its cache
    assert (await other.get(ADMIN, "f1")).description is None
    with pytest.raises(FlavorNotFound):
        await other.get(ALICE, "f1")
    names = [f.name for f in await other.list_flavors(ADMIN, FlavorQuery(is_public=None))]
    assert "small" in names

    await one.update_description("f1", "changed")
    assert (await other.get(ADMIN, "f1")).description == "changed"
    await one.update_extra_specs(ADMIN, "f1", {"hw:cpu_policy": "dedicated"})
    assert {s.key for s in (await other.get(ADMIN, "f1")).extra_specs} == {"hw:cpu_policy"}
    await one.add_access("f1", "p-alice")
    assert (await other.get(ALICE, "f1")).flavorid == "f1"
    await one.remove_access("f1", "p-alice")
    with pytest.raises(FlavorNotFound):
        await other.get(ALICE, "f1")

    await one.delete("f1")
    with pytest.raises(FlavorNotFound):
        await other.get(ADMIN, "f1")
    with pytest.raises(FlavorNotFound):
        await other.get_for_boot(ADMIN, "f1")
    assert "small" not in [f.name for f in await other.list_flavors(ADMIN, FlavorQuery(is_public=None))]


async def test_flavor_cache_is_kept_while_nothing_changed(
        two_dbs: tuple[Database, Database]) -> None:
    one = flavors(two_dbs[0])
    await one.create(NewFlavor(name="small", memory_mb=256, vcpus=1, root_gb=1,
                               flavorid="f1"))
    first = await one.get(ADMIN, "f1")
    assert await one.get(ADMIN, "f1") is first  # served from the cache


async def test_token_revoked_through_one_api_process_is_refused_at_once_by_another(
        two_dbs: tuple[Database, Database], tmp_path: Path) -> None:
    # refresh of an hour: only the generation can make the second process reread
    one, other = (Revocations(db, 3600, 3600.0, Generation(db, "revocations", shared=True))
                  for db in two_dbs)
    data = TokenProvider(tmp_path / "keys", 3600).issue(None, **TOKEN_FIELDS)[1]
    await other.check(data)  # loads its (empty) copy
    await one.revoke(audit_id=data.audit_id)
    with pytest.raises(TokenRevoked):
        await other.check(data)


def test_a_token_sealed_with_a_key_another_process_added_opens(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    old = TokenProvider(keys, 3600)
    (keys / "0").rename(keys / "00")  # sorts after the key added next
    from cryptography.fernet import Fernet
    (keys / "1").write_bytes(Fernet.generate_key())
    sealed, _ = TokenProvider(keys, 3600).issue(None, **TOKEN_FIELDS)
    assert old.validate(sealed).user_id == "u1"
    with pytest.raises(TokenNotValid):
        old.validate("garbage")


def test_two_processes_starting_together_make_one_first_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                TokenProvider(keys, 3600)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    assert [p.name for p in keys.iterdir()] == ["0"]
