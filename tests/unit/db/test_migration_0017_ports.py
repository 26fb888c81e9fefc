"""Migration 0017: virtual_interfaces become ports. Existing NICs get their server's
project and device_owner "compute:<zone>"; no row of fixed_ips, floating_ips or
virtual_interfaces is lost (SQLite rebuilds the table); down again, a port bound
to no server goes and its address is free. On SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from novalet.db import migrate
from novalet.db.engine import Database
from tests.unit.db.test_migration_0015 import NOW, _count, _fill, database

__all__ = ["database"]  # the fixture, parametrised over the three databases

TABLES = ("fixed_ips", "floating_ips", "virtual_interfaces", "networks", "instances")


def _placeholder(column: sa.Column[Any]) -> Any:
    """A value for a NOT NULL column the test does not care about."""
    kind = column.type.python_type
    if kind is bool:
        return False
    if kind in (int, float):
        return 0
    if kind is dict:
        return {}
    if kind is list:
        return []
    return NOW if kind.__name__ == "datetime" else "{}"  # JSON columns parse it too


def _instance(connection: Connection, uuid: str, project: str, zone: str | None) -> None:
    meta = sa.MetaData()
    meta.reflect(connection, only=["instances"])
    table = meta.tables["instances"]
    values = {c.name: _placeholder(c) for c in table.columns
              if not c.nullable and c.server_default is None and c.autoincrement is not True
              and c.name != "id"}
    values.update(uuid=uuid, project_id=project, availability_zone=zone, deleted=False)
    connection.execute(table.insert().values(**values))


def _old_rows(connection: Connection) -> None:
    """A network whose .5 is server vm-1's NIC with a floating IP (0015's rows) and a
    second NIC of vm-2, a server with no zone."""
    _fill(connection, False)
    _instance(connection, "vm-1", "p1", "zone-a")
    _instance(connection, "vm-2", "p2", None)
    meta = sa.MetaData()
    meta.reflect(connection, only=["fixed_ips", "floating_ips", "virtual_interfaces"])
    fixed, vifs = meta.tables["fixed_ips"], meta.tables["virtual_interfaces"]
    fixed_id, network_id = connection.execute(sa.select(fixed.c.id, fixed.c.network_id).where(
        fixed.c.address == "10.9.0.5")).one()
    vif_id = connection.execute(sa.select(vifs.c.id)).scalar_one()
    connection.execute(fixed.update().where(fixed.c.id == fixed_id).values(
        virtual_interface_id=vif_id))
    connection.execute(vifs.insert().values(
        uuid="vif-2", address="fa:16:3e:00:00:06", instance_uuid="vm-2",
        network_id=network_id, created_at=NOW))
    connection.execute(meta.tables["floating_ips"].insert().values(
        address="192.0.2.10", pool="public", project_id="p1", fixed_ip_id=fixed_id,
        auto_assigned=False, created_at=NOW))


def _ports(connection: Connection) -> list[Any]:
    return list(connection.execute(sa.text(
        "SELECT uuid, instance_uuid, project_id, device_owner, name, description, "
        "admin_state_up, port_security_enabled, allowed_address_pairs, security_groups, "
        "preserve_on_delete "
        "FROM virtual_interfaces ORDER BY id")).all())


def _unbound_port(connection: Connection) -> None:
    """What the network API makes: a port on no server holding .7."""
    network_id = connection.execute(sa.text("SELECT id FROM networks")).scalar_one()
    connection.execute(sa.text(
        "INSERT INTO virtual_interfaces (uuid, address, network_id, project_id, name, "
        "created_at) VALUES ('port-1', 'fa:16:3e:00:00:07', :net, 'p1', 'mine', :now)"),
        {"net": network_id, "now": NOW})
    connection.execute(sa.text(
        "UPDATE fixed_ips SET allocated = :yes, virtual_interface_id = (SELECT id FROM "
        "virtual_interfaces WHERE uuid = 'port-1') WHERE address = '10.9.0.7'"), {"yes": True})


def _counts(connection: Connection) -> list[int]:
    return [_count(connection, table) for table in TABLES]


async def test_nics_become_ports_and_no_row_is_lost(database: Database) -> None:
    await migrate.sync(database, "0016")
    async with database.engine.begin() as conn:
        await conn.run_sync(_old_rows)
        before = await conn.run_sync(_counts)
    await migrate.sync(database, "0017")
    async with database.engine.connect() as conn:
        after = await conn.run_sync(_counts)
        ports = await conn.run_sync(_ports)
        linked = (await conn.execute(sa.text(
            "SELECT f.address, v.uuid FROM fixed_ips f JOIN virtual_interfaces v ON "
            "v.id = f.virtual_interface_id"))).all()
    assert before == after == [16, 1, 2, 1, 2]
    assert [tuple(p[:4]) for p in ports] == [("vif-1", "vm-1", "p1", "compute:zone-a"),
                                             ("vif-2", "vm-2", "p2", "compute:nova")]
    for port in ports:
        assert (port.name, port.description, bool(port.admin_state_up),
                bool(port.port_security_enabled)) == ("", "", True, True)
        assert port.allowed_address_pairs is None and port.security_groups is None
        assert not port.preserve_on_delete  # a NIC the compute service made
    assert [tuple(row) for row in linked] == [("10.9.0.5", "vif-1")]
    if database.is_sqlite:
        async with database.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1


async def test_down_again_an_unbound_port_goes_and_frees_its_address(
        database: Database) -> None:
    await migrate.sync(database, "0016")
    async with database.engine.begin() as conn:
        await conn.run_sync(_old_rows)
    await migrate.sync(database, "0017")
    async with database.engine.begin() as conn:
        await conn.run_sync(_unbound_port)

    def down(connection: Connection) -> None:
        from alembic import command
        command.downgrade(migrate._alembic_config(connection), "0016")

    async with database.engine.begin() as conn:
        await conn.run_sync(down)
    async with database.engine.connect() as conn:
        vifs = (await conn.execute(sa.text(
            "SELECT uuid FROM virtual_interfaces ORDER BY id"))).scalars().all()
        freed = (await conn.execute(sa.text(
            "SELECT allocated, virtual_interface_id FROM fixed_ips "
            "WHERE address = '10.9.0.7'"))).one()
        counts = await conn.run_sync(_counts)
    assert vifs == ["vif-1", "vif-2"]
    assert (bool(freed[0]), freed[1]) == (False, None)
    assert counts == [16, 1, 2, 1, 2]
