"""Migration 0019: routers, their interfaces, the gateway column of floating_ips and
networks.needs_router (false for every existing network: the nova-network face's
keep reaching the outside through the host); down again, the gateway addresses are
free and every row else is kept."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from novalet.db import migrate
from novalet.db.engine import Database
from tests import server_db


def _to(revision: str, down: bool = False) -> object:
    def run(connection: Connection) -> None:
        config = migrate._alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)
    return run


OLD = "'2026-01-01 00:00:00'"


async def test_routers_up_and_down(tmp_path: Path) -> None:
    """On SQLite, or on the NOVALET_TEST_DATABASE server."""
    server = server_db.server_url()
    url = await server_db.create_database(server) if server else \
        f"sqlite:///{tmp_path / 'old.sqlite'}"
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0018"))
            await conn.execute(sa.text(
                "INSERT INTO networks (uuid, label, description, shared, external, "
                "admin_state_up, port_security_enabled, enable_dhcp, bridge, multi_host, "
                "deleted, created_at) VALUES ('n1', 'legacy', '', false, false, true, true, "
                f"true, 'br1', false, false, {OLD})"))
            await conn.execute(sa.text(
                "INSERT INTO floating_ips (address, pool, uuid, auto_assigned, description, "
                f"created_at) VALUES ('203.0.113.1', 'public', 'f1', false, '', {OLD})"))
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0019"))
        async with db.engine.begin() as conn:
            needs = (await conn.execute(sa.text(
                "SELECT needs_router FROM networks WHERE uuid = 'n1'"))).scalar_one()
            assert not needs
            network_id = (await conn.execute(sa.text(
                "SELECT id FROM networks WHERE uuid = 'n1'"))).scalar_one()
            await conn.execute(sa.text(
                "INSERT INTO routers (uuid, project_id, name, description, admin_state_up, "
                "status, gw_network_id, enable_snat, created_at) VALUES ('r1', 'p', 'r', '', "
                f"true, 'ACTIVE', {network_id}, true, {OLD})"))
            router_id = (await conn.execute(sa.text(
                "SELECT id FROM routers WHERE uuid = 'r1'"))).scalar_one()
            await conn.execute(sa.text(
                f"UPDATE floating_ips SET router_id = {router_id} WHERE uuid = 'f1'"))
            await conn.execute(sa.text(
                "INSERT INTO subnets (uuid, network_id, name, description, ip_version, cidr, "
                "enable_dhcp, allocation_pools, dns_nameservers, host_routes, created_at) "
                f"VALUES ('s1', {network_id}, '', '', 4, '10.1.0.0/24', true, '[]', '[]', "
                f"'[]', {OLD})"))
            subnet_id = (await conn.execute(sa.text(
                "SELECT id FROM subnets WHERE uuid = 's1'"))).scalar_one()
            await conn.execute(sa.text(
                "INSERT INTO router_interfaces (uuid, router_id, subnet_id, created_at) "
                f"VALUES ('i1', {router_id}, {subnet_id}, {OLD})"))
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0018", down=True))
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            assert "routers" not in tables and "router_interfaces" not in tables
            columns = await conn.run_sync(
                lambda c: [col["name"] for col in sa.inspect(c).get_columns("floating_ips")])
            assert "router_id" not in columns
            kept = (await conn.execute(sa.text(
                "SELECT address, project_id FROM floating_ips"))).all()
            assert [tuple(r) for r in kept] == [("203.0.113.1", None)]
            assert (await conn.execute(sa.text(
                "SELECT count(*) FROM subnets WHERE uuid = 's1'"))).scalar_one() == 1
    finally:
        await db.close()
        if server:
            await server_db.drop_database(server, url)
