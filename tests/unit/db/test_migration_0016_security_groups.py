"""Migration 0016: existing security groups and rules get uuids, their rules
direction ingress and ethertype IPv4, and every group Neutron's egress-anywhere
rules (so instances keep the outbound traffic they had while egress was not
filtered); default groups also the IPv6 rule from their members."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from novalet.db import migrate
from novalet.db.engine import Database
from tests import server_db


def _to(revision: str, down: bool = False) -> object:
    def run(connection: Connection) -> None:
        config = migrate._alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)
    return run


def _parent_of_0016(connection: Connection) -> str:
    script = ScriptDirectory.from_config(migrate._alembic_config(connection))
    parent = script.get_revision("0016").down_revision
    assert isinstance(parent, str)
    return parent


OLD = "'2026-01-01 00:00:00'"


async def _old_rows(conn: AsyncConnection) -> tuple[int, int]:
    """A default and a web group with a rule each and a member, as the release
    before 0016 had them (ids from the database's own sequences); their ids."""
    await conn.execute(sa.text(
        "INSERT INTO security_groups (name, description, project_id, created_at) VALUES "
        f"('default', 'default', 'p1', {OLD}), ('web', 'web servers', 'p1', {OLD})"))
    ids = dict((await conn.execute(sa.text("SELECT name, id FROM security_groups"))).all())
    default, web = ids["default"], ids["web"]
    await conn.execute(sa.text(
        "INSERT INTO security_group_rules (parent_group_id, protocol, from_port, to_port, "
        f"cidr, group_id, created_at) VALUES ({default}, NULL, NULL, NULL, NULL, {default}, "
        f"{OLD}), ({web}, 'tcp', 22, 22, '0.0.0.0/0', NULL, {OLD})"))
    await conn.execute(sa.text("INSERT INTO security_group_instances (security_group_id, "
                               f"instance_uuid) VALUES ({web}, 'instance-1')"))
    return default, web


async def test_existing_groups_keep_their_rules_and_their_egress(tmp_path: Path) -> None:
    """On SQLite, or on the NOVALET_TEST_DATABASE server."""
    server = server_db.server_url()
    url = await server_db.create_database(server) if server else \
        f"sqlite:///{tmp_path / 'old.sqlite'}"
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            parent = await conn.run_sync(_parent_of_0016)
            await conn.run_sync(_to(parent))
            default, web = await _old_rows(conn)
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0016"))
        async with db.engine.connect() as conn:
            groups = (await conn.execute(sa.text(
                "SELECT id, uuid FROM security_groups ORDER BY id"))).all()
            rules = (await conn.execute(sa.text(
                "SELECT parent_group_id, direction, ethertype, protocol, cidr, group_id, uuid, "
                "description FROM security_group_rules ORDER BY id"))).all()
        assert len({uuid for _, uuid in groups}) == 2
        assert all(len(uuid) == 36 for _, uuid in groups)
        assert len({r[6] for r in rules}) == len(rules)
        assert sorted(r[:6] for r in rules) == sorted([
            (default, "ingress", "IPv4", None, None, default),  # the old rules: ingress IPv4
            (web, "ingress", "IPv4", "tcp", "0.0.0.0/0", None),
            (default, "egress", "IPv4", None, None, None),
            (default, "egress", "IPv6", None, None, None),
            (default, "ingress", "IPv6", None, None, default),  # IPv6 from its members
            (web, "egress", "IPv4", None, None, None), (web, "egress", "IPv6", None, None, None)])
        assert {r[7] for r in rules} == {""}
        async with db.engine.connect() as conn:  # no table rebuild cascaded into these
            members = (await conn.execute(sa.text(
                "SELECT security_group_id, instance_uuid FROM security_group_instances"))).all()
        assert [tuple(m) for m in members] == [(web, "instance-1")]
        # down again: the previous release's rows (it read every rule as ingress)
        async with db.engine.begin() as conn:
            await conn.run_sync(_to(parent, down=True))
        async with db.engine.connect() as conn:
            left = (await conn.execute(sa.text(
                "SELECT parent_group_id, protocol FROM security_group_rules"))).all()
        assert sorted(tuple(row) for row in left) == sorted([(default, None), (web, "tcp")])
    finally:
        await db.close()
        if server:
            await server_db.drop_database(server, url)
