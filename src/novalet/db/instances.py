"""Database access for instances, their metadata and tags."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, delete, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db import console_auth
from novalet.db import placement
from novalet.db import quotas as db_quotas
from novalet.db import server_groups as db_groups
from novalet.db.engine import Database, rows_matched
from novalet.db.models import Allocation, Instance, InstanceMetadata, InstanceTag
from novalet.db.quotas import Admission

_UNSET: Any = object()


class InstanceNotFound(exceptions.NotFound):
    msg_fmt = "Instance %(instance_id)s could not be found."


class UnexpectedTaskState(exceptions.Conflict):
    msg_fmt = ("Conflict updating instance %(uuid)s. Expected task_state %(expected)s, "
               "actual %(actual)s.")


class MarkerNotFound(exceptions.Invalid):
    msg_fmt = "marker [%(marker)s] not found"


class FilterScanTooLong(exceptions.Invalid):
    msg_fmt = ("The regular-expression filters %(filters)s were tried on %(scanned)d "
               "servers without filling the page. Narrow the list: an exact filter "
               "(status, flavor, image, tags, changes-since, project_id), a smaller "
               "limit, or a pattern with a plain-text part (such as ^web- rather than "
               "^[a-z]{3}-) that the database can search for.")


@dataclass
class ListQuery:
    """Filters and paging for a list of instances; None means 'not filtered'."""

    project_id: str | None = None
    user_id: str | None = None
    uuids: list[str] | None = None
    vm_states: list[str] | None = None
    task_states: list[str | None] | None = None
    image_ref: str | None = None
    flavor_id: str | None = None
    host: str | None = None
    reservation_id: str | None = None
    locked: bool | None = None
    power_states: list[int] | None = None
    progress: int | None = None
    config_drive: bool | None = None
    launch_index: int | None = None
    requested_availability_zone: str | None = None
    # Filters the database does not run: {column: pattern}, matched (as regular
    # expressions, by the caller's `keep`) on what the query returns.
    patterns: dict[str, str] = field(default_factory=dict)
    # {text column: literal} the database narrows by first (LIKE '%literal%'): text
    # every match of that column's pattern must contain (bounded_regex.required_literal).
    contains: dict[str, str] = field(default_factory=dict)
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    deleted: bool | None = False
    sort: list[tuple[str, str]] = field(
        default_factory=lambda: [("created_at", "desc"), ("id", "desc")])
    limit: int | None = None
    marker: str | None = None


async def create(db: Database, instances: list[Instance],
                 admit: Admission[int] | None = None,
                 group_uuid: str | None = None,
                 group_admit: Callable[[int], None] | None = None) -> list[Instance]:
    """Insert the instances. With `admit` (compute/quotas.py), first take the
    project's quota lock and count its usage in this same transaction; admit says
    how many of them fit (or raises), and only those are inserted and returned."""
    async with db.transaction() as s:
        if admit is not None and instances:
            first = instances[0]
            fits = await db_quotas.admit_locked(s, first.project_id or "", first.user_id,
                                                admit)
            instances = instances[:fits]
        s.add_all(instances)
        if group_uuid is not None:  # they join the group with their creation
            await db_groups.add_members(s, group_uuid, [i.uuid for i in instances],
                                        group_admit)
    return instances


def _live(uuid: str, deleted: bool) -> Any:
    cond = Instance.uuid == uuid
    return cond if deleted else and_(cond, Instance.deleted.is_(False))


async def get(db: Database, uuid: str, project_id: str | None = None,
              deleted: bool = False) -> Instance:
    """The instance; InstanceNotFound when missing, deleted, or of another project."""
    async with db.transaction() as s:
        return await _get(s, uuid, project_id, deleted)


async def _get(s: AsyncSession, uuid: str, project_id: str | None = None,
               deleted: bool = False) -> Instance:
    query = select(Instance).where(_live(uuid, deleted))
    if project_id is not None:
        query = query.where(Instance.project_id == project_id)
    instance = (await s.execute(query)).scalar_one_or_none()
    if instance is None:
        raise InstanceNotFound(instance_id=uuid)
    return instance


async def update(db: Database, uuid: str, values: dict[str, Any],
                 expected_task_state: Any = _UNSET,
                 expected_vm_state: Any = _UNSET,
                 admit: Admission[None] | None = None) -> Instance:
    """Compare-and-swap: write `values` only while task_state (and vm_state) are as
    expected; UnexpectedTaskState (409) otherwise. Returns the updated instance.
    With `admit`, a quota check runs first in the same transaction, under the
    instance's project's quota lock (it raises when over quota)."""
    async with db.transaction() as s:
        if admit is not None:
            owner = (await s.execute(select(Instance.project_id, Instance.user_id).where(
                Instance.uuid == uuid))).one_or_none()
            if owner is not None:
                await db_quotas.admit_locked(s, owner[0] or "", owner[1], admit)
        await _compare_and_swap(s, uuid, values, expected_task_state, expected_vm_state)
        return await _get(s, uuid)


async def set_fields(db: Database, uuid: str, values: dict[str, Any],
                     expected_task_state: Any = _UNSET) -> None:
    """update() without reading the instance back: three reads fewer on the hot path."""
    async with db.transaction() as s:
        await _compare_and_swap(s, uuid, values, expected_task_state, _UNSET)


async def _compare_and_swap(s: AsyncSession, uuid: str, values: dict[str, Any],
                            expected_task_state: Any, expected_vm_state: Any) -> None:
    query = sql_update(Instance).where(_live(uuid, False))
    if expected_task_state is not _UNSET:
        expected = (expected_task_state if isinstance(expected_task_state, (list, tuple))
                    else [expected_task_state])
        query = query.where(_in_or_null(Instance.task_state, list(expected)))
    if expected_vm_state is not _UNSET:
        query = query.where(Instance.vm_state.in_(list(expected_vm_state)))
    result = await s.execute(query.values(**{**values, "updated_at": utcnow()})
                             .execution_options(synchronize_session=False))
    if rows_matched(result) == 0:
        current = await _get(s, uuid)
        raise UnexpectedTaskState(uuid=uuid, expected=expected_task_state,
                                  actual=current.task_state)


def _in_or_null(column: Any, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    clauses = [column.in_(present)] if present else []
    if None in values:
        clauses.append(column.is_(None))
    return or_(*clauses)


def evacuate_source_consumer(uuid: str) -> str:
    """The consumer holding an evacuee's allocations on its failed host meanwhile."""
    return f"{uuid}:evacuate-source"


async def destroy(db: Database, uuid: str) -> None:
    """Mark the instance deleted and free what placement holds for it (under its
    uuid and the consumers a resize or an evacuation holds aside)."""
    now = utcnow()
    async with db.transaction() as s:
        await s.execute(sql_update(Instance).where(Instance.uuid == uuid).values(
            deleted=True, deleted_at=now, terminated_at=now, vm_state="deleted",
            task_state=None, power_state=0, updated_at=now))
        consumers = [uuid, placement.resize_consumer(uuid), evacuate_source_consumer(uuid)]
        await placement.bump_generations_of(s, consumers)  # schedulers' caches see it
        await s.execute(delete(Allocation).where(Allocation.consumer_id.in_(consumers)))
        await db_groups.remove_member(s, uuid)
        await console_auth.forget_instance(s, uuid)  # its console tokens die with it


async def return_held_allocations(db: Database, uuid: str, held: str) -> bool:
    """`held`'s allocations back to instance `uuid` (replacing what it holds) if it
    still exists; if it was deleted, both consumers' allocations are dropped. The
    row is locked first, so a concurrent destroy comes before or after, never
    between. Whether they went back."""
    async with db.transaction() as s:
        alive = (await s.execute(select(Instance.id).where(
            Instance.uuid == uuid, Instance.deleted.is_(False)).with_for_update())).first()
        await placement.bump_generations_of(s, [held, uuid])
        await s.execute(delete(Allocation).where(Allocation.consumer_id == (
            uuid if alive else held)))
        if alive:
            await s.execute(sql_update(Allocation).where(Allocation.consumer_id == held)
                            .values(consumer_id=uuid))
        else:
            await s.execute(delete(Allocation).where(Allocation.consumer_id == uuid))
    return alive is not None


# The API's name of each pattern column that has another one (for error messages).
PATTERN_PARAMS = {"display_name": "name", "display_description": "description"}
# A filter run outside SQL on a batch of scanned rows: each row carries uuid, id,
# the sort keys and the pattern columns as attributes (a light row, not an Instance).
Keep = Callable[[list[Any]], Awaitable[list[Any]]]
# Rows read per round when a `keep` filter thins them out after the query.
KEEP_BATCH = 200


async def list_instances(db: Database, q: ListQuery, keep: Keep | None = None,
                         max_scanned: int | None = None) -> list[Instance]:
    """One page of instances: filtered, sorted, after the marker, at most q.limit.

    The marker must be one of the rows of the list's scope, q.project_id and
    q.user_id (MarkerNotFound, 400, otherwise: another project's or user's server is
    never a position in this list). With `keep` (filters matched outside SQL, e.g.
    regular expressions), light rows (only the columns keep and the keyset need)
    are read in keyset batches of KEEP_BATCH and thinned by keep until the page is
    full, so limit and marker stay exact, and only the page's rows are loaded whole;
    past max_scanned rows read without filling the page, FilterScanTooLong (400)
    rather than a short page that would pass for the end."""
    if q.patterns and keep is None:
        raise ValueError("ListQuery.patterns need a keep filter that matches them")
    async with db.transaction() as s:
        marker = await _marker(s, q)
    if keep is None:
        return await _read(db, q, marker, q.limit)
    found: list[Any] = []
    scanned = 0
    position: Any = marker
    while q.limit is None or len(found) < q.limit:
        if max_scanned is not None and scanned >= max_scanned:
            filters = sorted(PATTERN_PARAMS.get(c, c) for c in q.patterns)
            raise FilterScanTooLong(filters=", ".join(filters), scanned=scanned)
        rows = await _scan(db, q, position, KEEP_BATCH)
        scanned += len(rows)
        found.extend(await keep(rows))
        if len(rows) < KEEP_BATCH:
            break
        position = rows[-1]
    return await _whole(db, q, [r.uuid for r in
                                (found if q.limit is None else found[:q.limit])])


async def _scan(db: Database, q: ListQuery, position: Any, limit: int) -> list[Any]:
    """A batch of light rows: uuid, id, the sort keys and the pattern columns."""
    names = {"uuid", "id", *(k for k, _ in q.sort),
             *(c for c in q.patterns if c in Instance.__table__.c)}
    query = _filtered(select(*[getattr(Instance, n) for n in sorted(names)]), q)
    if position is not None:
        query = query.where(_after(position, q.sort))
    query = query.order_by(*_order(q.sort)).limit(limit)
    async with db.transaction() as s:
        return list((await s.execute(query)).all())


async def _whole(db: Database, q: ListQuery, uuids: list[str]) -> list[Instance]:
    """The instances of uuids, in that order (those gone since the scan left out)."""
    if not uuids:
        return []
    query = _filtered(select(Instance), q).where(Instance.uuid.in_(uuids))
    async with db.transaction() as s:
        by_uuid = {i.uuid: i for i in (await s.execute(query)).scalars().all()}
    return [by_uuid[u] for u in uuids if u in by_uuid]


async def _marker(s: AsyncSession, q: ListQuery) -> Instance | None:
    if not q.marker:
        return None
    query = _scoped(select(Instance).where(Instance.uuid == q.marker), q)
    marker: Instance | None = (await s.execute(query)).scalar_one_or_none()
    if marker is None:
        raise MarkerNotFound(marker=q.marker)
    return marker


async def _read(db: Database, q: ListQuery, marker: Instance | None, limit: int | None
                ) -> list[Instance]:
    query = _filtered(select(Instance), q)
    if marker is not None:
        query = query.where(_after(marker, q.sort))
    query = query.order_by(*_order(q.sort))
    if limit is not None:
        query = query.limit(limit)
    async with db.transaction() as s:
        return list((await s.execute(query)).scalars().all())


def _scoped(query: Any, q: ListQuery) -> Any:
    """Whose rows: q.project_id and q.user_id, for the list and its marker alike (a
    token without a project lists its user's servers across projects, and may page
    only from one of those)."""
    if q.project_id is not None:
        query = query.where(Instance.project_id == q.project_id)
    if q.user_id is not None:
        query = query.where(Instance.user_id == q.user_id)
    return query


def _filtered(query: Any, q: ListQuery) -> Any:
    query = _scoped(query, q)
    for name, literal in q.contains.items():
        table_column = Instance.__table__.c.get(name)
        if table_column is not None and isinstance(table_column.type, String):
            # Where LIKE ignores case (SQLite, MariaDB) it keeps a few rows more,
            # which the pattern then drops; it never drops a match.
            query = query.where(table_column.contains(literal, autoescape=True))
    exact = {Instance.image_ref: q.image_ref, Instance.host: q.host,
             Instance.reservation_id: q.reservation_id, Instance.locked: q.locked,
             Instance.progress: q.progress, Instance.config_drive: q.config_drive,
             Instance.launch_index: q.launch_index,
             Instance.requested_availability_zone: q.requested_availability_zone,
             Instance.deleted: q.deleted}
    for column, value in exact.items():
        if value is not None:
            query = query.where(column == value)
    if q.uuids is not None:
        query = query.where(Instance.uuid.in_(q.uuids))
    if q.vm_states is not None:
        query = query.where(Instance.vm_state.in_(q.vm_states))
    if q.task_states is not None:
        query = query.where(_in_or_null(Instance.task_state, q.task_states))
    if q.power_states is not None:
        query = query.where(Instance.power_state.in_(q.power_states))
    if q.flavor_id is not None:
        query = query.where(Instance.flavor["flavorid"].as_string() == q.flavor_id)
    if q.changes_since is not None:
        query = query.where(Instance.updated_at >= q.changes_since)
    if q.changes_before is not None:
        query = query.where(Instance.updated_at <= q.changes_before)
    return _tag_filters(query, q)


def _tag_filters(query: Any, q: ListQuery) -> Any:
    def has(tag: str) -> Any:
        return Instance.tags.any(InstanceTag.tag == tag)

    for tag in q.tags:
        query = query.where(has(tag))
    if q.tags_any:
        query = query.where(or_(*[has(t) for t in q.tags_any]))
    if q.not_tags:
        query = query.where(~and_(*[has(t) for t in q.not_tags]))
    for tag in q.not_tags_any:
        query = query.where(~has(tag))
    return query


_SORTABLE = {"created_at", "updated_at", "display_name", "uuid", "id", "vm_state",
             "task_state", "power_state", "host", "node", "launched_at", "terminated_at",
             "availability_zone", "project_id", "user_id", "key_name", "hostname",
             "image_ref", "locked", "launch_index", "reservation_id", "display_description",
             "access_ip_v4", "access_ip_v6", "progress", "config_drive"}


def sort_keys() -> set[str]:
    return set(_SORTABLE)


def _order(sort: list[tuple[str, str]]) -> list[Any]:
    keys = list(sort)
    if ("id", "desc") not in keys and ("id", "asc") not in keys:
        keys.append(("id", keys[0][1] if keys else "desc"))
    return [term for k, d in keys for term in _ordered(k, d)]


def _ordered(key: str, direction: str) -> list[Any]:
    """ORDER BY terms for one key. NULLs come first ascending and last descending on
    every database, as SQLite and MySQL order them (PostgreSQL does the opposite):
    _after's keyset condition relies on it."""
    column = getattr(Instance, key)
    terms = [column.desc() if direction == "desc" else column.asc()]
    if Instance.__table__.c[key].nullable:
        is_null = column.is_(None)
        terms.insert(0, is_null.asc() if direction == "desc" else is_null.desc())
    return terms


def _after(marker: Instance, sort: list[tuple[str, str]]) -> Any:
    """Keyset condition: rows that sort after `marker` under `sort` (plus id)."""
    keys = list(sort)
    if not any(k == "id" for k, _ in keys):
        keys.append(("id", keys[0][1] if keys else "desc"))
    clauses = []
    for i, (key, direction) in enumerate(keys):
        equal = [getattr(Instance, k) == getattr(marker, k) for k, _ in keys[:i]]
        column, value = getattr(Instance, key), getattr(marker, key)
        if value is None:
            beyond = column.is_not(None) if direction == "asc" else None
        else:
            beyond = column > value if direction == "asc" else or_(
                column < value, column.is_(None))
        if beyond is not None:
            clauses.append(and_(*equal, beyond))
    return or_(*clauses) if clauses else False


async def uuids_of_project(db: Database, uuids: Sequence[str], project_id: str
                           ) -> list[str]:
    """Those of `uuids` that are instances of project_id (deleted ones included)."""
    if not uuids:
        return []
    async with db.transaction() as s:
        return list((await s.execute(select(Instance.uuid).where(
            Instance.uuid.in_(list(uuids)), Instance.project_id == project_id))).scalars())


async def count_for_project(db: Database, project_id: str) -> dict[str, int]:
    """Instances, cores and RAM a project uses (its non-deleted instances)."""
    async with db.transaction() as s:
        rows = (await s.execute(select(Instance.flavor).where(
            Instance.project_id == project_id, Instance.deleted.is_(False)))).scalars()
        flavors = list(rows)
    return {"instances": len(flavors), "cores": sum(f["vcpus"] for f in flavors),
            "ram": sum(f["memory_mb"] for f in flavors)}


# --- metadata -------------------------------------------------------------

async def set_metadata(db: Database, uuid: str, items: dict[str, str],
                       replace: bool, admit: Callable[[int], None] | None = None
                       ) -> dict[str, str]:
    """Merge (or with replace, set exactly) the instance's metadata; returns it all.
    `admit` (the metadata_items quota) sees the number of items the change leaves
    and may raise before commit; the instance's row is locked first, so concurrent
    changes of one instance take turns."""
    async with db.transaction() as s:
        await _touch(s, uuid)
        await _get(s, uuid)
        if replace:
            await s.execute(delete(InstanceMetadata).where(
                InstanceMetadata.instance_uuid == uuid))
        for key, value in items.items():
            await s.merge(InstanceMetadata(instance_uuid=uuid, key=key, value=value))
        rows = await s.execute(select(InstanceMetadata).where(
            InstanceMetadata.instance_uuid == uuid))
        result = {m.key: m.value for m in rows.scalars()}
        if admit is not None:
            admit(len(result))
        return result


async def delete_metadata(db: Database, uuid: str, key: str) -> bool:
    async with db.transaction() as s:
        result = await s.execute(delete(InstanceMetadata).where(
            InstanceMetadata.instance_uuid == uuid, InstanceMetadata.key == key))
        await _touch(s, uuid)
        return bool(rows_matched(result))


async def _touch(s: AsyncSession, uuid: str) -> None:
    await s.execute(sql_update(Instance).where(Instance.uuid == uuid)
                    .values(updated_at=utcnow()))


# --- tags -----------------------------------------------------------------

async def set_tags(db: Database, uuid: str, tags: list[str]) -> list[str]:
    async with db.transaction() as s:
        await _get(s, uuid)
        await s.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == uuid))
        s.add_all([InstanceTag(instance_uuid=uuid, tag=t) for t in dict.fromkeys(tags)])
        await _touch(s, uuid)
    return list(dict.fromkeys(tags))


async def add_tag(db: Database, uuid: str, tag: str, max_tags: int) -> bool:
    """Add a tag; False when it was already there. TooManyTags past max_tags."""
    async with db.transaction() as s:
        await _get(s, uuid)
        existing = set((await s.execute(select(InstanceTag.tag).where(
            InstanceTag.instance_uuid == uuid))).scalars())
        if tag in existing:
            return False
        if len(existing) >= max_tags:
            raise TooManyTags(max=max_tags)
        s.add(InstanceTag(instance_uuid=uuid, tag=tag))
        await _touch(s, uuid)
        return True


class TooManyTags(exceptions.Invalid):
    msg_fmt = "The number of tags exceeded the per-server limit %(max)s"


async def delete_tag(db: Database, uuid: str, tag: str) -> bool:
    async with db.transaction() as s:
        result = await s.execute(delete(InstanceTag).where(
            InstanceTag.instance_uuid == uuid, InstanceTag.tag == tag))
        await _touch(s, uuid)
        return bool(rows_matched(result))



async def set_password_once(db: Database, uuid: str, password: str) -> bool:
    """Store the guest's encrypted password unless one is stored; True when stored.
    (The check and the write share one transaction.)"""
    async with db.transaction() as s:
        instance = await _get(s, uuid)
        if instance.system_metadata.get("password"):
            return False
        await s.execute(sql_update(Instance).where(Instance.uuid == uuid).values(
            system_metadata={**instance.system_metadata, "password": password},
            updated_at=utcnow()))
        return True


async def clear_password(db: Database, uuid: str) -> None:
    """Forget the guest's posted password (os-server-password DELETE), so it may post
    another."""
    async with db.transaction() as s:
        instance = await _get(s, uuid)
        metadata = {k: v for k, v in instance.system_metadata.items() if k != "password"}
        await s.execute(sql_update(Instance).where(Instance.uuid == uuid).values(
            system_metadata=metadata, updated_at=utcnow()))
