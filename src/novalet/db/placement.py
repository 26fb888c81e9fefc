"""Placement-style resource tracking: providers, inventories, atomic allocation claims.

A claim re-reads the provider's usage and writes its allocations only if the
provider's generation is unchanged, bumping it: two schedulers racing for the
last resources can't both win, on any database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novalet.db import server_groups as db_groups
from novalet.db.engine import Database
from novalet.db.models import (AggregateHost, AggregateMetadata, Allocation, Inventory,
                               ResourceProvider, Service)

AZ_KEY = "availability_zone"


@dataclass
class ProviderSummary:
    uuid: str
    name: str
    host: str
    availability_zone: str
    generation: int
    capacity: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)

    def free(self, resource_class: str) -> int:
        return self.capacity.get(resource_class, 0) - self.used.get(resource_class, 0)


async def upsert_provider(db: Database, uuid: str, name: str, host: str,
                          availability_zone: str,
                          inventories: dict[str, tuple[int, int, float]]) -> None:
    """Create or refresh a provider; inventories are {class: (total, reserved, ratio)}."""
    async with db.transaction() as s:
        provider = await s.get(ResourceProvider, uuid)
        if provider is None:
            provider = ResourceProvider(uuid=uuid, name=name, host=host,
                                        availability_zone=availability_zone)
            s.add(provider)
        provider.availability_zone = availability_zone
        provider.generation = (provider.generation or 0) + 1
        provider.inventories = [
            Inventory(provider_uuid=uuid, resource_class=rc, total=total, reserved=reserved,
                      allocation_ratio=ratio)
            for rc, (total, reserved, ratio) in inventories.items()]


async def zones_by_host(db: Database) -> dict[str, str]:
    """{host: availability zone} of every provider: the zone of the host's aggregates
    (metadata availability_zone), else the zone the compute host reported (its
    [DEFAULT] default_availability_zone)."""
    async with db.transaction() as s:
        rows = await s.execute(select(ResourceProvider.host, ResourceProvider.availability_zone)
                               .order_by(ResourceProvider.name))
        reported = {host: zone for host, zone in rows}
        return {**reported, **await _aggregate_zones(s, reported)}


async def _aggregate_zones(s: AsyncSession, hosts: Iterable[str] | None = None
                           ) -> dict[str, str]:
    """{host: zone} of hosts in aggregates with a zone (several joined by ',', as Nova)."""
    query = (select(AggregateHost.host, AggregateMetadata.value)
             .join(AggregateMetadata, AggregateMetadata.aggregate_id ==
                   AggregateHost.aggregate_id)
             .where(AggregateMetadata.key == AZ_KEY))
    if hosts is not None:
        query = query.where(AggregateHost.host.in_(list(hosts)))
    zones: dict[str, set[str]] = {}
    for host, zone in await s.execute(query):
        zones.setdefault(host, set()).add(zone)
    return {host: ",".join(sorted(found)) for host, found in zones.items()}


async def summaries(db: Database, with_zones: bool = True) -> list[ProviderSummary]:
    """Every provider with its capacity and usage; its availability_zone is that of
    the host's aggregates unless with_zones is False (then: what the host reported)."""
    async with db.transaction() as s:
        return await _summaries(s, with_zones=with_zones)


async def _summaries(s: AsyncSession, uuid: str | None = None, with_zones: bool = True,
                     uuids: list[str] | None = None) -> list[ProviderSummary]:
    """Providers (all; the one `uuid`; or those of `uuids`) with capacity and usage."""
    wanted = [uuid] if uuid else uuids
    query = select(ResourceProvider).order_by(ResourceProvider.name)
    if wanted is not None:
        query = query.where(ResourceProvider.uuid.in_(wanted))
    providers = list((await s.execute(query)).scalars())
    usage_q = select(Allocation.provider_uuid, Allocation.resource_class,
                     func.sum(Allocation.used)).group_by(Allocation.provider_uuid,
                                                         Allocation.resource_class)
    if wanted is not None:
        usage_q = usage_q.where(Allocation.provider_uuid.in_(wanted))
    used: dict[str, dict[str, int]] = {}
    for provider_uuid, rc, total in await s.execute(usage_q):
        used.setdefault(provider_uuid, {})[rc] = int(total)
    zones = (await _aggregate_zones(s, [p.host for p in providers] if wanted else None)
             if with_zones else {})
    return [ProviderSummary(
        uuid=p.uuid, name=p.name, host=p.host,
        availability_zone=zones.get(p.host, p.availability_zone),
        generation=p.generation,
        capacity={i.resource_class: int((i.total - i.reserved) * i.allocation_ratio)
                  for i in p.inventories},
        used=used.get(p.uuid, {})) for p in providers]


async def _free(s: AsyncSession, provider_uuid: str) -> dict[str, int]:
    """{resource class: what is left} of one provider, in two plain queries."""
    capacity = {rc: int((total - reserved) * ratio) for rc, total, reserved, ratio in
                await s.execute(select(Inventory.resource_class, Inventory.total,
                                       Inventory.reserved, Inventory.allocation_ratio)
                                .where(Inventory.provider_uuid == provider_uuid))}
    for rc, used in await s.execute(
            select(Allocation.resource_class, func.sum(Allocation.used))
            .where(Allocation.provider_uuid == provider_uuid)
            .group_by(Allocation.resource_class)):
        capacity[rc] = capacity.get(rc, 0) - int(used)
    return capacity


class _ClaimLost(Exception):
    """Raised inside the claim's transaction to roll it back."""


async def claim(db: Database, consumer_id: str, provider_uuid: str,
                resources: dict[str, int], generation: int,
                group: tuple[str, int] | None = None) -> bool:
    """Allocate `resources` to the consumer if the provider still has them and its
    generation is still `generation`. False means: re-read and try again. The
    consumer's earlier allocations are replaced, as Placement does, so a build
    scheduled a second time (a redelivered message) holds one claim, not two."""
    try:
        async with db.transaction() as s:
            await s.execute(delete(Allocation).where(Allocation.consumer_id == consumer_id))
            bumped = await s.execute(update(ResourceProvider).where(
                ResourceProvider.uuid == provider_uuid,
                ResourceProvider.generation == generation).values(generation=generation + 1))
            if bumped.rowcount != 1:  # type: ignore[attr-defined]
                raise _ClaimLost()
            # A server group member: the group's generation too (server_groups.py).
            if group is not None and not await db_groups.bump_generation(s, *group):
                raise _ClaimLost()
            free = await _free(s, provider_uuid)
            if any(free.get(rc, 0) < amount for rc, amount in resources.items() if amount):
                raise _ClaimLost()
            rows = [{"consumer_id": consumer_id, "provider_uuid": provider_uuid,
                     "resource_class": rc, "used": amount}
                    for rc, amount in resources.items() if amount]
            if rows:
                await s.execute(insert(Allocation), rows)
    except _ClaimLost:
        return False
    return True


def resize_consumer(uuid: str) -> str:
    """The consumer holding a resize's new flavor until confirm or revert."""
    return f"{uuid}:resize"


async def bump_generations_of(s: AsyncSession, consumer_ids: list[str]) -> None:
    """A change of usage bumps the providers' generations, as in Placement: schedulers
    that cache provider usage see by the generation that theirs is stale."""
    touched = select(Allocation.provider_uuid).where(
        Allocation.consumer_id.in_(consumer_ids)).distinct()
    await s.execute(update(ResourceProvider).where(ResourceProvider.uuid.in_(touched))
                    .values(generation=ResourceProvider.generation + 1))


async def remove_allocations(db: Database, consumer_id: str) -> None:
    async with db.transaction() as s:
        await bump_generations_of(s, [consumer_id])
        await s.execute(delete(Allocation).where(Allocation.consumer_id == consumer_id))


async def allocations_of(db: Database, consumer_id: str) -> dict[str, int]:
    async with db.transaction() as s:
        rows = await s.execute(select(Allocation.resource_class, Allocation.used).where(
            Allocation.consumer_id == consumer_id))
        return {rc: used for rc, used in rows}


async def move_allocations(db: Database, source: str, target: str) -> None:
    """Make `source`'s allocations `target`'s, replacing what `target` held."""
    async with db.transaction() as s:
        await bump_generations_of(s, [source, target])
        await s.execute(delete(Allocation).where(Allocation.consumer_id == target))
        await s.execute(update(Allocation).where(Allocation.consumer_id == source)
                        .values(consumer_id=target))


@dataclass(frozen=True)
class ComputeServiceState:
    """What the scheduler reads of a host's nova-compute service record."""

    host: str
    disabled: bool
    disabled_reason: str | None
    forced_down: bool
    last_seen_up: dt.datetime | None


@dataclass
class SchedulerSnapshot:
    """What changed for a scheduler's cache since `since` (everything if None), read
    in one transaction: compute services, provider generations, and (always whole,
    it is small) each host's aggregate metadata."""

    services: dict[str, ComputeServiceState]
    generations: dict[str, int]
    aggregate_metadata: dict[str, dict[str, set[str]]]
    provider_count: int  # all providers, changed or not (a drop means some were deleted)


async def scheduler_snapshot(db: Database, since: dt.datetime | None) -> SchedulerSnapshot:
    """Rows are plain tuples: a thousand ORM objects per scheduling request would cost
    more than the decision itself."""
    services_q = select(Service.host, Service.disabled, Service.disabled_reason,
                        Service.forced_down, Service.last_seen_up).where(
        Service.binary == "nova-compute")
    providers_q = select(ResourceProvider.uuid, ResourceProvider.generation)
    if since is not None:
        services_q = services_q.where(or_(Service.updated_at >= since,
                                          Service.created_at >= since))
        providers_q = providers_q.where(or_(ResourceProvider.updated_at >= since,
                                            ResourceProvider.created_at >= since))
    metadata_q = (select(AggregateHost.host, AggregateMetadata.key, AggregateMetadata.value)
                  .join(AggregateMetadata, AggregateMetadata.aggregate_id ==
                        AggregateHost.aggregate_id))
    async with db.transaction() as s:
        services = {row[0]: ComputeServiceState(*row) for row in await s.execute(services_q)}
        generations = {uuid: gen for uuid, gen in await s.execute(providers_q)}
        metadata: dict[str, dict[str, set[str]]] = {}
        for host, key, value in await s.execute(metadata_q):
            metadata.setdefault(host, {}).setdefault(key, set()).add(value)
        count = (await s.execute(select(func.count()).select_from(ResourceProvider))
                 ).scalar_one()
    return SchedulerSnapshot(services, generations, metadata, count)


async def summaries_of(db: Database, uuids: list[str]) -> list[ProviderSummary]:
    """Fresh summaries of some providers (those a cache found changed), with the
    zones their hosts reported."""
    if not uuids:
        return []
    async with db.transaction() as s:
        return await _summaries(s, with_zones=False, uuids=uuids)
