"""Server group records: members, where placement holds them, generations, quotas."""

from pathlib import Path
from typing import Any

import pytest

from novalet.db import migrate, placement
from novalet.db import server_groups as db_groups
from novalet.db.engine import Database
from novalet.db.models import ServerGroup

RESOURCES = {"VCPU": 1, "MEMORY_MB": 64, "DISK_GB": 1}


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'g.sqlite'}")
    await migrate.sync(database)
    for host in ("h1", "h2"):
        await placement.upsert_provider(database, f"rp-{host}", host, host, "nova",
                                        {"VCPU": (64, 0, 1.0), "MEMORY_MB": (8192, 0, 1.0),
                                         "DISK_GB": (100, 0, 1.0)})
    yield database
    await database.close()


async def _group(db: Database, project: str = "p", admit: Any = None) -> ServerGroup:
    return await db_groups.create(db, ServerGroup(
        uuid=f"g-{project}-{len(await db_groups.list_groups(db, None, None, 0))}", name="g",
        project_id=project, user_id="u", policy="anti-affinity", rules={}, generation=0),
        admit)


async def _claim(db: Database, consumer: str, host: str) -> None:
    (provider,) = [p for p in await placement.summaries(db) if p.host == host]
    assert await placement.claim(db, consumer, provider.uuid, RESOURCES, provider.generation)


async def test_member_hosts_count_members_by_their_claims(db: Database) -> None:
    group = await _group(db)
    async with db.transaction() as s:
        await db_groups.add_members(s, group.uuid, ["a", "b", "c", "d"])
    await _claim(db, "a", "h1")
    await _claim(db, "b", "h1")
    await _claim(db, "c", "h2")  # d holds no claim: placed nowhere yet
    await _claim(db, "stranger", "h2")
    generation, hosts = await db_groups.member_hosts(db, group.uuid, exclude=[])
    assert (generation, hosts) == (0, {"h1": 2, "h2": 1})
    assert (await db_groups.member_hosts(db, group.uuid, exclude=["a", "c"]))[1] == {"h1": 1}
    assert await db_groups.hosts_of_instances(db, ["a", "c", "d"]) == {"a": "h1", "c": "h2"}
    assert await db_groups.group_uuids_of(db, ["a", "stranger"]) == {"a": [group.uuid]}


async def test_removed_member_and_deleted_group(db: Database) -> None:
    group = await _group(db)
    async with db.transaction() as s:
        await db_groups.add_members(s, group.uuid, ["a", "b"])
    async with db.transaction() as s:
        await db_groups.remove_member(s, "a")
    assert [m.instance_uuid for m in (await db_groups.get(db, group.uuid)).members] == ["b"]
    await db_groups.delete_group(db, group.uuid)
    with pytest.raises(db_groups.ServerGroupNotFound):
        await db_groups.get(db, group.uuid)
    assert await db_groups.group_uuids_of(db, ["b"]) == {}


async def test_generation_is_compare_and_swap(db: Database) -> None:
    group = await _group(db)
    async with db.transaction() as s:
        assert await db_groups.bump_generation(s, group.uuid, 0)
    async with db.transaction() as s:
        assert not await db_groups.bump_generation(s, group.uuid, 0)
    assert (await db_groups.member_hosts(db, group.uuid, []))[0] == 1


async def test_other_projects_groups_are_not_found(db: Database) -> None:
    group = await _group(db, "p1")
    with pytest.raises(db_groups.ServerGroupNotFound):
        await db_groups.get(db, group.uuid, project_id="p2")
    assert await db_groups.list_groups(db, "p2", None, 0) == []
    assert await db_groups.count_groups(db, "p1") == 1


async def test_admit_sees_usage_and_can_refuse(db: Database) -> None:
    seen: list[int] = []

    def admit(in_use: int) -> None:
        seen.append(in_use)
        if in_use >= 2:
            raise RuntimeError("full")

    await _group(db, "p", admit)
    await _group(db, "p", admit)
    with pytest.raises(RuntimeError):
        await _group(db, "p", admit)
    assert seen == [0, 1, 2]
    assert await db_groups.count_groups(db, "p") == 2
    group = (await db_groups.list_groups(db, "p", None, 0))[0]

    def members(after: int) -> None:
        if after > 3:
            raise RuntimeError("too many members")

    with pytest.raises(RuntimeError):
        async with db.transaction() as s:
            await db_groups.add_members(s, group.uuid, ["a", "b", "c", "d"], members)
    assert (await db_groups.get(db, group.uuid)).members == []
