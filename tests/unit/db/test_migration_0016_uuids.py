"""0016's uuid columns during a rolling upgrade: a process of the release before
inserts security groups and rules without a uuid. Several such rows must fit under
the unique index (NULLs never collide: SQLite, PostgreSQL, MariaDB), and the
network API gives each a uuid when it reads them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from novalet.db import migrate
from novalet.db import security_groups as db_groups
from novalet.db.engine import Database
from novalet.network.api import NetworkAPI
from novalet.network.neutron_security_groups import NeutronSecurityGroups
from tests.unit.db.test_migration_0015 import database
from tests.unit.network.ipam_fixtures import ctx, db, make_net, net, refreshes

__all__ = ["database", "db", "make_net", "net", "refreshes"]

OLD = "'2026-01-01 00:00:00'"


async def _old_release_rows(conn: AsyncConnection, project: str = "p1") -> None:
    """Two groups with a rule each, inserted as the release before 0016 does
    (it knows no uuid, direction, ethertype or description)."""
    await conn.execute(sa.text(
        "INSERT INTO security_groups (name, description, project_id, created_at) VALUES "
        f"('web', 'w', '{project}', {OLD}), ('db', 'd', '{project}', {OLD})"))
    ids = list((await conn.execute(sa.text("SELECT id FROM security_groups"))).scalars())
    for group_id in ids:
        await conn.execute(sa.text(
            "INSERT INTO security_group_rules (parent_group_id, protocol, from_port, to_port, "
            f"cidr, created_at) VALUES ({group_id}, 'tcp', 22, 22, '0.0.0.0/0', {OLD})"))


async def _uuids(conn: AsyncConnection) -> list[str | None]:
    return [uuid for table in ("security_groups", "security_group_rules")
            for uuid in (await conn.execute(sa.text(f"SELECT uuid FROM {table}"))).scalars()]


async def test_rows_without_uuid_fit_and_get_one(database: Database) -> None:
    await migrate.sync(database)
    async with database.engine.begin() as conn:
        await _old_release_rows(conn)
    async with database.engine.connect() as conn:
        assert await _uuids(conn) == [None] * 4
    assert await db_groups.fill_missing_uuids(database) == 4
    async with database.engine.connect() as conn:
        uuids = await _uuids(conn)
    assert len(set(uuids)) == 4 and all(isinstance(u, str) and len(u) == 36 for u in uuids)
    assert await db_groups.fill_missing_uuids(database) == 0


async def test_network_api_shows_an_old_release_group(net: NetworkAPI, db: Database) -> None:
    groups = NeutronSecurityGroups(net)
    async with db.engine.begin() as conn:
        await _old_release_rows(conn)
    listed = {g.name: g for g in await groups.list_groups(ctx())}
    web = listed["web"]
    assert len(web.id) == 36 and (await groups.get_group(ctx(), web.id)).name == "web"
    (rule,) = [r for r in web.security_group_rules if r.protocol == "tcp"]
    assert len(rule.id) == 36 and rule.security_group_id == web.id
    assert (await groups.get_rule(ctx(), rule.id)).port_range_min == 22


async def test_compute_api_shows_an_old_release_group_by_uuid(net: NetworkAPI,
                                                              db: Database) -> None:
    """The compute API shows the uuids too, so its reads fill them first; the
    integer id an old script knew still names the group."""
    async with db.engine.begin() as conn:
        await _old_release_rows(conn)
    listed = {g.name: g for g in await net.list_security_groups(ctx())}
    web = listed["web"]
    assert len(web.uuid) == 36 and all(len(r.uuid) == 36 for r in web.rules)
    assert (await net.get_security_group(ctx(), web.uuid)).id == web.id
    assert (await net.get_security_group(ctx(), str(web.id))).uuid == web.uuid
    sources = await net.rule_sources(web.rules)
    assert sources[web.id] == (web.uuid, "web", "p1")
