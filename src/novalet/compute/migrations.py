"""Migration records (os-migrations): made when a move starts, their status moved
along by the API (confirming, reverting) and the compute host (migrating … finished,
confirmed, reverted, error) as the move goes."""

from __future__ import annotations

from typing import Any

from novalet.common.context import RequestContext
from novalet.db import flavors as db_flavors
from novalet.db import migrations_records
from novalet.db.engine import Database
from novalet.db.migrations_records import MigrationMarkerNotFound, MigrationQuery
from novalet.db.models import Instance, Migration

__all__ = ["MigrationMarkerNotFound", "MigrationQuery", "list_migrations",
           "record_evacuation", "record_move", "set_status"]

# Nova's migration statuses, in the order a resize passes them.
RESIZE_STATUSES = ("pre-migrating", "migrating", "post-migrating", "finished", "confirming",
                   "confirmed", "reverting", "reverted", "error")
MIGRATION_TYPES = ("migration", "resize", "live-migration", "evacuation")


async def _flavor_pk(db: Database, flavorid: str | None) -> int | None:
    """The integer id os-migrations shows for a flavor (None once it is deleted)."""
    if not flavorid:
        return None
    flavor = await db_flavors.get(db, flavorid)
    return None if flavor is None else flavor.id


async def record_move(db: Database, ctx: RequestContext, instance: Instance,
                      new_flavor: dict[str, Any], kind: str) -> Migration:
    """A move from the instance's host, destination not yet known: pre-migrating for
    a migration or resize, accepted for a live migration (as Nova records them)."""
    old = await _flavor_pk(db, instance.flavor.get("flavorid"))
    same = new_flavor.get("flavorid") == instance.flavor.get("flavorid")
    return await migrations_records.create(db, {
        "instance_uuid": instance.uuid, "project_id": instance.project_id,
        "user_id": ctx.user_id, "source_compute": instance.host,
        "source_node": instance.node, "dest_compute": None, "dest_node": None,
        "dest_host": None, "old_instance_type_id": old,
        "new_instance_type_id": old if same else await _flavor_pk(db, new_flavor.get("flavorid")),
        "status": "accepted" if kind == "live-migration" else "pre-migrating",
        "migration_type": kind})
async def record_evacuation(db: Database, ctx: RequestContext, instance: Instance,
                            host: str | None) -> Migration:
    """An evacuation off the instance's (failed) host, status accepted; `host` the
    requested destination, if any (the conductor fills in the one it claims)."""
    flavor = await _flavor_pk(db, instance.flavor.get("flavorid"))
    return await migrations_records.create(db, {
        "instance_uuid": instance.uuid, "project_id": instance.project_id,
        "user_id": ctx.user_id, "source_compute": instance.host,
        "source_node": instance.node, "dest_compute": host, "dest_node": None,
        "dest_host": None, "old_instance_type_id": flavor, "new_instance_type_id": flavor,
        "status": "accepted", "migration_type": "evacuation"})


async def set_status(db: Database, instance_uuid: str, status: str,
                     from_statuses: tuple[str, ...] | None = None) -> None:
    """Move the instance's newest migration to `status`."""
    await migrations_records.set_status(db, instance_uuid, status, from_statuses)


async def list_migrations(db: Database, query: MigrationQuery) -> list[Migration]:
    return await migrations_records.list_migrations(db, query)
