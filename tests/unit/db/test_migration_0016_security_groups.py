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

from novalet.db import migrate
from novalet.db.engine import Database


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


OLD_ROWS = """
INSERT INTO security_groups (id, name, description, project_id, created_at)
    VALUES (1, 'default', 'default', 'p1', '2026-01-01'),
           (2, 'web', 'web servers', 'p1', '2026-01-01');
INSERT INTO security_group_rules (id, parent_group_id, protocol, from_port, to_port, cidr,
                                  group_id, created_at)
    VALUES (1, 1, NULL, NULL, NULL, NULL, 1, '2026-01-01'),
           (2, 2, 'tcp', 22, 22, '0.0.0.0/0', NULL, '2026-01-01');
INSERT INTO security_group_instances (security_group_id, instance_uuid)
    VALUES (2, 'instance-1');
"""


async def test_existing_groups_keep_their_rules_and_their_egress(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
    try:
        async with db.engine.begin() as conn:
            parent = await conn.run_sync(_parent_of_0016)
            await conn.run_sync(_to(parent))
            for statement in OLD_ROWS.split(";"):
                if statement.strip():
                    await conn.execute(sa.text(statement))
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
            (1, "ingress", "IPv4", None, None, 1),           # the old rules, as ingress IPv4
            (2, "ingress", "IPv4", "tcp", "0.0.0.0/0", None),
            (1, "egress", "IPv4", None, None, None), (1, "egress", "IPv6", None, None, None),
            (1, "ingress", "IPv6", None, None, 1),           # default: IPv6 from its members
            (2, "egress", "IPv4", None, None, None), (2, "egress", "IPv6", None, None, None)])
        assert {r[7] for r in rules} == {""}
        async with db.engine.connect() as conn:  # no table rebuild cascaded into these
            members = (await conn.execute(sa.text(
                "SELECT security_group_id, instance_uuid FROM security_group_instances"))).all()
        assert [tuple(m) for m in members] == [(2, "instance-1")]
        # down again: the previous release's rows (it read every rule as ingress)
        async with db.engine.begin() as conn:
            await conn.run_sync(_to(parent, down=True))
        async with db.engine.connect() as conn:
            left = (await conn.execute(sa.text(
                "SELECT id FROM security_group_rules ORDER BY id"))).all()
        assert [row[0] for row in left] == [1, 2]
    finally:
        await db.close()
