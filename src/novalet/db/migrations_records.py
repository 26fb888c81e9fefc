"""Database access for migration records (resize, migrate, live-migrate): not to be
confused with db/migrations/, the schema's Alembic history."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select

from novalet import exceptions
from novalet.db.engine import Database
from novalet.db.models import Migration

# Statuses a move is still under way in: a new move can't start while one is.
IN_PROGRESS = ("queued", "pre-migrating", "migrating", "post-migrating", "preparing",
               "running", "running (post-copy)", "confirming", "reverting")


class MigrationMarkerNotFound(exceptions.Invalid):
    msg_fmt = "Marker %(marker)s could not be found."


@dataclass
class MigrationQuery:
    """Filters and paging of a migration list; None means 'not filtered'."""

    host: str | None = None  # source or destination
    status: str | None = None
    instance_uuid: str | None = None
    source_compute: str | None = None
    migration_type: str | None = None
    hidden: bool | None = None
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None
    user_id: str | None = None
    project_id: str | None = None
    limit: int | None = None
    marker: str | None = None


async def create(db: Database, values: dict[str, Any]) -> Migration:
    async with db.transaction() as s:
        record = Migration(uuid=str(uuidlib.uuid4()), hidden=False, **values)
        s.add(record)
        return record


async def set_status(db: Database, instance_uuid: str, status: str,
                     from_statuses: tuple[str, ...] | None = None) -> Migration | None:
    """Set the status of the instance's newest migration, if it is in `from_statuses`
    (any when None); None when there is no such migration."""
    async with db.transaction() as s:
        record = (await s.execute(
            select(Migration).where(Migration.instance_uuid == instance_uuid)
            .order_by(Migration.created_at.desc(), Migration.id.desc()).limit(1))
        ).scalar_one_or_none()
        if record is None or (from_statuses is not None and record.status not in from_statuses):
            return None
        record.status = status
        return record


async def get(db: Database, uuid: str) -> Migration | None:
    async with db.transaction() as s:
        return (await s.execute(select(Migration).where(Migration.uuid == uuid))
                ).scalar_one_or_none()


async def get_of_instance(db: Database, instance_uuid: str, migration_id: int
                          ) -> Migration | None:
    """Migration `migration_id` (the integer id the API shows) if it is the instance's."""
    async with db.transaction() as s:
        return (await s.execute(select(Migration).where(
            Migration.id == migration_id, Migration.instance_uuid == instance_uuid))
        ).scalar_one_or_none()


async def update(db: Database, uuid: str, values: dict[str, Any],
                 from_statuses: tuple[str, ...] | None = None) -> Migration | None:
    """Set `values` on migration `uuid` if its status is one of `from_statuses` (any
    when None): a compare-and-swap, so two steps can't both move one migration on.
    None when there is no such migration or it was in another status."""
    async with db.transaction() as s:
        record = (await s.execute(select(Migration).where(Migration.uuid == uuid)
                                  .with_for_update())).scalar_one_or_none()
        if record is None or (from_statuses is not None and record.status not in from_statuses):
            return None
        for key, value in values.items():
            setattr(record, key, value)
        return record


async def list_migrations(db: Database, q: MigrationQuery) -> list[Migration]:
    """Newest first (created_at, then id); a marker is a migration uuid."""
    async with db.transaction() as s:
        query = select(Migration)
        if q.host:
            query = query.where(or_(Migration.source_compute == q.host,
                                    Migration.dest_compute == q.host))
        if q.status:
            query = query.where(Migration.status == q.status)
        if q.instance_uuid:
            query = query.where(Migration.instance_uuid == q.instance_uuid)
        if q.source_compute:
            query = query.where(Migration.source_compute == q.source_compute)
        if q.migration_type:
            query = query.where(Migration.migration_type == q.migration_type)
        if q.hidden is not None:
            query = query.where(Migration.hidden.is_(q.hidden))
        if q.user_id:
            query = query.where(Migration.user_id == q.user_id)
        if q.project_id:
            query = query.where(Migration.project_id == q.project_id)
        # A record never changed since it was made counts as changed when made.
        changed = func.coalesce(Migration.updated_at, Migration.created_at)
        if q.changes_since is not None:
            query = query.where(changed >= q.changes_since)
        if q.changes_before is not None:
            query = query.where(changed <= q.changes_before)
        if q.marker is not None:
            marker = (await s.execute(select(Migration).where(Migration.uuid == q.marker))
                      ).scalar_one_or_none()
            if marker is None:
                raise MigrationMarkerNotFound(marker=q.marker)
            query = query.where(or_(
                Migration.created_at < marker.created_at,
                and_(Migration.created_at == marker.created_at, Migration.id < marker.id)))
        query = query.order_by(Migration.created_at.desc(), Migration.id.desc())
        if q.limit is not None:
            query = query.limit(q.limit)
        return list((await s.execute(query)).scalars())


async def evacuations_from(db: Database, host: str, statuses: tuple[str, ...]) -> list[Migration]:
    """The evacuations off `host` in one of `statuses`."""
    async with db.transaction() as s:
        return list((await s.execute(select(Migration).where(
            Migration.source_compute == host, Migration.migration_type == "evacuation",
            Migration.status.in_(statuses)))).scalars())
