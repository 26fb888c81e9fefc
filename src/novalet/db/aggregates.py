"""Database access for host aggregates: their hosts and their metadata."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.db.engine import Database
from novalet.db.models import Aggregate, AggregateHost, AggregateMetadata, Instance, utcnow

AZ_KEY = "availability_zone"


class AggregateNotFound(exceptions.NotFound):
    msg_fmt = "Aggregate %(aggregate_id)s could not be found."


class AggregateNameExists(exceptions.Conflict):
    msg_fmt = "Aggregate %(aggregate_name)s already exists."


class AggregateHostExists(exceptions.Conflict):
    msg_fmt = "Aggregate %(aggregate_id)s already has host %(host)s."


class AggregateHostNotFound(exceptions.NotFound):
    msg_fmt = "Aggregate %(aggregate_id)s has no host %(host)s."


def metadata_of(aggregate: Aggregate) -> dict[str, str]:
    return {m.key: m.value for m in aggregate.metadata_items}


async def list_all(db: Database) -> list[Aggregate]:
    async with db.transaction() as s:
        return list((await s.execute(select(Aggregate).order_by(Aggregate.id))).scalars())


async def get(db: Database, aggregate_id: int) -> Aggregate:
    async with db.transaction() as s:
        return await _get(s, aggregate_id)


async def _get(s: AsyncSession, aggregate_id: int) -> Aggregate:
    aggregate = await s.get(Aggregate, aggregate_id)
    if aggregate is None:
        raise AggregateNotFound(aggregate_id=aggregate_id)
    return aggregate


async def _name_taken(s: AsyncSession, name: str, other_than: int | None = None) -> bool:
    query = select(Aggregate.id).where(Aggregate.name == name)
    if other_than is not None:
        query = query.where(Aggregate.id != other_than)
    return (await s.execute(query)).first() is not None


async def create(db: Database, name: str, metadata: Mapping[str, str]) -> Aggregate:
    """A new aggregate; AggregateNameExists (409) when the name is taken."""
    try:
        async with db.transaction() as s:
            if await _name_taken(s, name):
                raise AggregateNameExists(aggregate_name=name)
            aggregate = Aggregate(uuid=str(uuidlib.uuid4()), name=name, hosts=[],
                                  metadata_items=[AggregateMetadata(key=k, value=v)
                                                  for k, v in metadata.items()])
            s.add(aggregate)
            await s.flush()
            return aggregate
    except IntegrityError:  # a concurrent create of the same name won
        raise AggregateNameExists(aggregate_name=name) from None


async def update(db: Database, aggregate_id: int, name: str | None = None,
                 metadata: Mapping[str, str | None] | None = None) -> Aggregate:
    """Rename and/or change metadata (a None value deletes the key)."""
    try:
        async with db.transaction() as s:
            aggregate = await _get(s, aggregate_id)
            if name is not None and name != aggregate.name:
                if await _name_taken(s, name, other_than=aggregate_id):
                    raise AggregateNameExists(aggregate_name=name)
                aggregate.name = name
            if metadata:
                _apply_metadata(aggregate, metadata)
            aggregate.updated_at = utcnow()
            await s.flush()
            return aggregate
    except IntegrityError:
        raise AggregateNameExists(aggregate_name=name) from None


def _apply_metadata(aggregate: Aggregate, changes: Mapping[str, str | None]) -> None:
    current = {m.key: m for m in aggregate.metadata_items}
    for key, value in changes.items():
        if value is None:
            if key in current:
                aggregate.metadata_items.remove(current.pop(key))
        elif key in current:
            current[key].value = value
        else:
            current[key] = AggregateMetadata(key=key, value=value)
            aggregate.metadata_items.append(current[key])


async def delete(db: Database, aggregate_id: int) -> Aggregate:
    """Delete the aggregate (its metadata goes with it); the caller checks it is empty."""
    async with db.transaction() as s:
        aggregate = await _get(s, aggregate_id)
        await s.delete(aggregate)
        return aggregate


async def add_host(db: Database, aggregate_id: int, host: str) -> Aggregate:
    try:
        async with db.transaction() as s:
            aggregate = await _get(s, aggregate_id)
            if any(h.host == host for h in aggregate.hosts):
                raise AggregateHostExists(aggregate_id=aggregate_id, host=host)
            aggregate.hosts.append(AggregateHost(host=host))
            aggregate.updated_at = utcnow()
            await s.flush()
            return aggregate
    except IntegrityError:
        raise AggregateHostExists(aggregate_id=aggregate_id, host=host) from None


async def remove_host(db: Database, aggregate_id: int, host: str) -> Aggregate:
    async with db.transaction() as s:
        aggregate = await _get(s, aggregate_id)
        found = [h for h in aggregate.hosts if h.host == host]
        if not found:
            raise AggregateHostNotFound(aggregate_id=aggregate_id, host=host)
        aggregate.hosts.remove(found[0])
        aggregate.updated_at = utcnow()
        await s.flush()
        return aggregate


async def zones_of_hosts(db: Database, hosts: Iterable[str]
                         ) -> dict[str, dict[int, str]]:
    """{host: {aggregate id: zone}} for the aggregates with a zone holding these hosts."""
    wanted = list(hosts)
    if not wanted:
        return {}
    async with db.transaction() as s:
        rows = await s.execute(
            select(AggregateHost.host, AggregateHost.aggregate_id, AggregateMetadata.value)
            .join(AggregateMetadata, AggregateMetadata.aggregate_id ==
                  AggregateHost.aggregate_id)
            .where(AggregateMetadata.key == AZ_KEY, AggregateHost.host.in_(wanted)))
        zones: dict[str, dict[int, str]] = {}
        for host, aggregate_id, zone in rows:
            zones.setdefault(host, {})[aggregate_id] = zone
        return zones


async def hosts_with_instances(db: Database, hosts: Iterable[str]) -> list[str]:
    """Those of `hosts` that hold servers (not deleted)."""
    wanted = list(hosts)
    if not wanted:
        return []
    async with db.transaction() as s:
        rows = await s.execute(select(Instance.host).where(
            Instance.host.in_(wanted), Instance.deleted.is_(False)).distinct())
        return sorted(host for (host,) in rows if host)
