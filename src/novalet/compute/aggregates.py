"""Host aggregates as admins manage them (Nova's AggregateAPI): groups of compute hosts
with metadata, where the metadata key availability_zone makes the aggregate a zone."""

from __future__ import annotations

from collections.abc import Mapping

from novalet import exceptions
from novalet.compute.host_not_found import ComputeHostNotFound
from novalet.db import aggregates as db_aggregates
from novalet.db import services as db_services
from novalet.db.aggregates import (AZ_KEY, AggregateHostExists, AggregateHostNotFound,
                                   AggregateNameExists, AggregateNotFound)
from novalet.db.engine import Database
from novalet.db.models import Aggregate
from novalet.db.services import COMPUTE_BINARY

__all__ = ["AZ_KEY", "AggregateAPI", "AggregateHostExists", "AggregateHostNotFound",
           "AggregateNameExists", "AggregateNotFound", "ComputeHostNotFound",
           "InvalidAggregateActionAdd", "InvalidAggregateActionDelete",
           "InvalidAggregateActionUpdate", "InvalidAggregateActionUpdateMeta"]


class InvalidAggregateActionAdd(exceptions.Conflict):
    msg_fmt = "Cannot add host to aggregate %(aggregate_id)s. Reason: %(reason)s."


class InvalidAggregateActionDelete(exceptions.Invalid):
    msg_fmt = "Cannot remove host from aggregate %(aggregate_id)s. Reason: %(reason)s."


class InvalidAggregateActionUpdate(exceptions.Invalid):
    msg_fmt = "Cannot update aggregate %(aggregate_id)s. Reason: %(reason)s."


class InvalidAggregateActionUpdateMeta(exceptions.Invalid):
    msg_fmt = "Cannot update metadata of aggregate %(aggregate_id)s. Reason: %(reason)s."


_ZONE_ERRORS: dict[str, type[exceptions.NovaletError]] = {
    "add_host": InvalidAggregateActionAdd, "update": InvalidAggregateActionUpdate,
    "set_metadata": InvalidAggregateActionUpdateMeta}


class AggregateAPI:
    """Every change keeps the rule zones rely on: a host is in one zone only, so it
    can't sit in two aggregates that name different availability zones."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_aggregates(self) -> list[Aggregate]:
        return await db_aggregates.list_all(self.db)

    async def get(self, aggregate_id: int) -> Aggregate:
        return await db_aggregates.get(self.db, aggregate_id)

    async def create(self, name: str, availability_zone: str | None) -> Aggregate:
        metadata = {AZ_KEY: availability_zone} if availability_zone else {}
        return await db_aggregates.create(self.db, name, metadata)

    async def update(self, aggregate_id: int, name: str | None,
                     availability_zone: str | None, zone_given: bool) -> Aggregate:
        """Rename and/or move to another zone (a zone can't be taken away: 400)."""
        aggregate = await self.get(aggregate_id)
        metadata: dict[str, str | None] = {}
        if zone_given:
            metadata[AZ_KEY] = availability_zone
            await self._check_zone(aggregate, availability_zone, [], "update")
        return await db_aggregates.update(self.db, aggregate_id, name=name, metadata=metadata)

    async def delete(self, aggregate_id: int) -> None:
        aggregate = await self.get(aggregate_id)
        if aggregate.hosts:
            raise InvalidAggregateActionDelete(aggregate_id=aggregate_id,
                                               reason="Host aggregate is not empty")
        await db_aggregates.delete(self.db, aggregate_id)

    async def add_host(self, aggregate_id: int, host: str) -> Aggregate:
        aggregate = await self.get(aggregate_id)
        await self._require_compute_host(host)
        zone = db_aggregates.metadata_of(aggregate).get(AZ_KEY)
        if zone:
            await self._check_zone(aggregate, zone, [host], "add_host")
        return await db_aggregates.add_host(self.db, aggregate_id, host)

    async def remove_host(self, aggregate_id: int, host: str) -> Aggregate:
        await self.get(aggregate_id)
        await self._require_compute_host(host)
        return await db_aggregates.remove_host(self.db, aggregate_id, host)

    async def set_metadata(self, aggregate_id: int, changes: Mapping[str, str | None]
                           ) -> Aggregate:
        """Add, change or (value None) delete metadata keys."""
        aggregate = await self.get(aggregate_id)
        if AZ_KEY in changes:
            await self._check_zone(aggregate, changes[AZ_KEY], [], "set_metadata")
        return await db_aggregates.update(self.db, aggregate_id, metadata=changes)

    async def _require_compute_host(self, host: str) -> None:
        if not await db_services.list_services(self.db, binary=COMPUTE_BINARY, host=host):
            raise ComputeHostNotFound(host=host)

    async def _check_zone(self, aggregate: Aggregate, zone: str | None,
                          new_hosts: list[str], action: str) -> None:
        """As Nova: no empty zone; no other zone for hosts that hold servers; and no
        zone its hosts (present or joining) have a different one of through other
        aggregates."""
        if action != "add_host" and not zone:
            raise _ZONE_ERRORS[action](
                aggregate_id=aggregate.id,
                reason=f"Aggregate {aggregate.name} does not support empty named "
                       "availability zone")
        current = db_aggregates.metadata_of(aggregate).get(AZ_KEY)
        if action != "add_host" and zone != current and await (
                db_aggregates.hosts_with_instances(self.db, [h.host for h in aggregate.hosts])):
            # Servers keep the zone they were given; moving their host would lie.
            raise _ZONE_ERRORS[action](aggregate_id=aggregate.id,
                                       reason="One or more hosts contain instances in this zone")
        hosts = {h.host for h in aggregate.hosts} | set(new_hosts)
        zones = await db_aggregates.zones_of_hosts(self.db, hosts)
        conflicting = sorted({other for by_aggregate in zones.values()
                              for agg_id, other in by_aggregate.items()
                              if agg_id != aggregate.id and other != zone})
        if conflicting:
            raise _ZONE_ERRORS[action](
                aggregate_id=aggregate.id,
                reason=f"One or more hosts already in availability zone(s) {conflicting}")
