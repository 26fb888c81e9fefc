"""The cloud's services (each host's nova-compute, nova-conductor, nova-scheduler …) as
admins list, disable, force down and delete them: Nova's HostAPI service calls."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from novalet import config, exceptions
from novalet.db import placement
from novalet.db import services as db_services
from novalet.db.engine import Database
from novalet.db.models import Service
from novalet.db.services import (COMPUTE_BINARY, ComputeServiceChanged, ComputeServiceInUse,
                                 HostBinaryNotFound, ServiceNotFound)

__all__ = ["API_BINARIES", "COMPUTE_BINARY", "INTERNAL_ZONE", "ComputeServiceChanged",
           "ComputeServiceInUse", "HostBinaryNotFound", "InvalidServiceUpdate",
           "ServiceAPI", "ServiceNotFound", "ServiceState", "ServiceUpdateNotSupported"]

# Where services other than compute live, as Nova's internal_service_availability_zone.
INTERNAL_ZONE = "internal"
# API services are not listed: they don't heartbeat like the others, so they'd look down.
API_BINARIES = ("nova-osapi_compute", "nova-metadata", "nova-api")

ENABLED, DISABLED = "enabled", "disabled"


class ServiceUpdateNotSupported(exceptions.Invalid):
    msg_fmt = ("Updating a %(binary)s service is not supported. Only nova-compute "
               "services can be updated.")


class InvalidServiceUpdate(exceptions.Invalid):
    msg_fmt = "%(reason)s"


@dataclass(frozen=True)
class ServiceState:
    """A service record with what the API shows beside it: its zone and liveness."""

    record: Service
    zone: str
    up: bool

    @property
    def updated_at(self) -> dt.datetime | None:
        """The last heartbeat; for a record that never reported, its last change."""
        return self.record.last_seen_up or self.record.updated_at


class ServiceAPI:
    """Service records with their zones and up/down state ([DEFAULT] service_down_time).

    Only nova-compute services can be disabled or forced down (the scheduler is
    what reads those flags); any service can be listed and deleted."""

    def __init__(self, db: Database, conf: config.Config) -> None:
        self.db = db
        self.conf = conf

    async def list_services(self, host: str | None = None, binary: str | None = None
                            ) -> list[ServiceState]:
        """Every service but the API's own, optionally of one host and/or binary."""
        records = await db_services.list_services(self.db, binary=binary, host=host)
        zones = await placement.zones_by_host(self.db)
        return [self._state(r, zones) for r in records if r.binary not in API_BINARIES]

    async def get(self, key: str | int) -> Service:
        """A service by uuid (str) or integer id; ServiceNotFound (404) otherwise."""
        return await db_services.get_service(self.db, key)

    async def state_of(self, record: Service) -> ServiceState:
        return self._state(record, await placement.zones_by_host(self.db))

    async def update(self, record: Service, *, status: str | None = None,
                     disabled_reason: str | None = None, forced_down: bool | None = None
                     ) -> ServiceState:
        """Enable or disable (with an optional reason) and/or set forced_down.

        Enabling clears the reason; a reason needs status disabled; forced_down
        makes the service count as down at once, whatever its heartbeats say."""
        if record.binary != COMPUTE_BINARY:
            raise ServiceUpdateNotSupported(binary=record.binary)
        if disabled_reason is not None and status == ENABLED:
            raise InvalidServiceUpdate(reason="Specifying 'disabled_reason' with status "
                                       "'enabled' is invalid.")
        if disabled_reason is not None and status is None:
            raise InvalidServiceUpdate(reason="Specifying 'disabled_reason' requires status "
                                       "'disabled' in the same request.")
        if status is None and forced_down is None:
            raise InvalidServiceUpdate(reason="No updates were requested. Fields 'status' "
                                       "or 'forced_down' should be specified.")
        updated = await db_services.update_service(
            self.db, record.uuid, disabled=None if status is None else status == DISABLED,
            disabled_reason=disabled_reason, forced_down=forced_down)
        return await self.state_of(updated)

    async def update_by_host(self, host: str, binary: str, *, status: str | None = None,
                             disabled_reason: str | None = None,
                             forced_down: bool | None = None) -> ServiceState:
        """update() for the service found by host and binary (the API below 2.53)."""
        if binary != COMPUTE_BINARY:  # before the lookup, as Nova answers it
            raise ServiceUpdateNotSupported(binary=binary)
        record = await db_services.find_service(self.db, host, binary)
        return await self.update(record, status=status, disabled_reason=disabled_reason,
                                 forced_down=forced_down)

    async def delete(self, record: Service) -> None:
        """Remove the record; a compute service also its host's resource providers,
        refused (409) while instances are on them. A service still running records
        itself again at its next heartbeat, as a new service."""
        await db_services.delete_service(self.db, record.uuid)

    def _state(self, record: Service, zones: dict[str, str]) -> ServiceState:
        if record.binary == COMPUTE_BINARY:
            zone = zones.get(record.host) or self.conf.get("DEFAULT",
                                                           "default_availability_zone")
        else:
            zone = INTERNAL_ZONE
        down_time = self.conf.get("DEFAULT", "service_down_time")
        return ServiceState(record, zone, db_services.is_up(record, down_time))
