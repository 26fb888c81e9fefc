"""Migration 0018: each floating IP pool becomes an external network with a subnet
covering its addresses; its floating_ips rows point at it, get uuids, and keep
everything else (pool name, project, association)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from novalet.db import migrate
from novalet.db.engine import Database
from tests import server_db


def _to(revision: str, down: bool = False) -> object:
    def run(connection: Connection) -> None:
        config = migrate._alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)
    return run


def _parent_of_0018(connection: Connection) -> str:
    script = ScriptDirectory.from_config(migrate._alembic_config(connection))
    parent = script.get_revision("0018").down_revision
    assert isinstance(parent, str)
    return parent


OLD = "'2026-01-01 00:00:00'"
FLOATING = "SELECT id, address, pool, project_id, fixed_ip_id, host, auto_assigned FROM " \
           "floating_ips ORDER BY id"


async def test_pools_become_external_networks_and_keep_every_row(tmp_path: Path) -> None:
    """On SQLite, or on the NOVALET_TEST_DATABASE server."""
    server = server_db.server_url()
    url = await server_db.create_database(server) if server else \
        f"sqlite:///{tmp_path / 'old.sqlite'}"
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            parent = await conn.run_sync(_parent_of_0018)
            await conn.run_sync(_to(parent))
            await conn.execute(sa.text(
                "INSERT INTO floating_ips (address, pool, project_id, auto_assigned, created_at) "
                f"VALUES ('203.0.113.1', 'public', 'p1', false, {OLD}), "
                f"('203.0.113.2', 'public', NULL, false, {OLD}), "
                f"('203.0.113.254', 'public', NULL, false, {OLD}), "
                f"('198.51.100.9', 'dmz', NULL, false, {OLD})"))
            before = (await conn.execute(sa.text(FLOATING))).all()
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0018"))
        async with db.engine.connect() as conn:
            after = (await conn.execute(sa.text(FLOATING))).all()
            links = dict((await conn.execute(sa.text(
                "SELECT address, network_id FROM floating_ips"))).all())
            uuids = list((await conn.execute(sa.text("SELECT uuid FROM floating_ips"))).scalars())
            nets = {row[0]: row[1:] for row in (await conn.execute(sa.text(
                "SELECT label, id, external, shared, project_id, cidr, bridge FROM networks"
            ))).all()}
            subnets = {row[0]: row[1:] for row in (await conn.execute(sa.text(
                "SELECT network_id, cidr, gateway_ip, enable_dhcp FROM subnets"))).all()}
        assert [tuple(r) for r in after] == [tuple(r) for r in before]  # every row kept
        assert len(set(uuids)) == 4 and all(len(u) == 36 for u in uuids)
        public, dmz = nets["public"], nets["dmz"]
        assert (bool(public[1]), bool(public[2]), public[3], public[4], public[5]) == (
            True, False, None, "203.0.113.0/24", "")
        assert dmz[4] == "198.51.100.9/32"
        assert {links["203.0.113.1"], links["203.0.113.254"]} == {public[0]}
        assert links["198.51.100.9"] == dmz[0]
        assert subnets[public[0]][:2] == ("203.0.113.0/24", None)
        assert not subnets[public[0]][2]
        async with db.engine.begin() as conn:  # down: the release before's rows again
            await conn.run_sync(_to(parent, down=True))
        async with db.engine.connect() as conn:
            again = (await conn.execute(sa.text(FLOATING))).all()
            left = (await conn.execute(sa.text("SELECT count(*) FROM networks"))).scalar()
        assert [tuple(r) for r in again] == [tuple(r) for r in before]
        assert left == 0
    finally:
        await db.close()
        if server:
            await server_db.drop_database(server, url)
