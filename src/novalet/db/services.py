"""Database access for service records and their heartbeats."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib

from sqlalchemy import delete, select

from novalet import exceptions
from novalet.common.timeutils import utcnow
from novalet.db.engine import Database, rows_matched
from novalet.db.models import (AggregateHost, Allocation, ComputeNode, Instance,
                               ResourceProvider, Service)

COMPUTE_BINARY = "nova-compute"


class ServiceNotFound(exceptions.NotFound):
    msg_fmt = "Service %(service_id)s could not be found."


class HostBinaryNotFound(exceptions.NotFound):
    msg_fmt = "Could not find binary %(binary)s on host %(host)s."


class ComputeServiceInUse(exceptions.Conflict):
    msg_fmt = ("Unable to delete the %(binary)s service of host %(host)s: %(count)d "
               "instance(s) are still on it (%(uuids)s). Delete or migrate them first.")


class ComputeServiceChanged(exceptions.Conflict):
    msg_fmt = ("The resources of host %(host)s changed while its %(binary)s service was "
               "being deleted (a server was placed there); try again.")


async def heartbeat(db: Database, host: str, binary: str, topic: str) -> Service:
    """Create the service record on first report, then bump it."""
    async with db.transaction() as s:
        service = (await s.execute(select(Service).where(
            Service.host == host, Service.binary == binary))).scalar_one_or_none()
        if service is None:
            service = Service(uuid=str(uuidlib.uuid4()), host=host, binary=binary,
                              topic=topic, report_count=0)
            s.add(service)
        service.report_count += 1
        service.last_seen_up = utcnow()
        return service


async def list_services(db: Database, binary: str | None = None,
                        host: str | None = None) -> list[Service]:
    """Service records in creation order; `binary` and `host` filter exactly."""
    async with db.transaction() as s:
        query = select(Service).order_by(Service.id)
        if binary:
            query = query.where(Service.binary == binary)
        if host:
            query = query.where(Service.host == host)
        return list((await s.execute(query)).scalars())


async def get_service(db: Database, key: str | int) -> Service:
    """One service by its uuid (a str) or its integer id; ServiceNotFound (404) otherwise."""
    column = Service.uuid if isinstance(key, str) else Service.id
    async with db.transaction() as s:
        service = (await s.execute(select(Service).where(column == key))).scalar_one_or_none()
    if service is None:
        raise ServiceNotFound(service_id=key)
    return service


async def find_service(db: Database, host: str, binary: str) -> Service:
    """The service `binary` of `host`; HostBinaryNotFound (404) when there is none."""
    async with db.transaction() as s:
        service = (await s.execute(select(Service).where(
            Service.host == host, Service.binary == binary))).scalar_one_or_none()
    if service is None:
        raise HostBinaryNotFound(host=host, binary=binary)
    return service


async def update_service(db: Database, uuid: str, *, disabled: bool | None = None,
                         disabled_reason: str | None = None,
                         forced_down: bool | None = None) -> Service:
    """Set what an admin may change; None leaves a field as it is, except that the
    reason is written whenever `disabled` is (enabling clears it)."""
    async with db.transaction() as s:
        service = (await s.execute(select(Service).where(Service.uuid == uuid))
                   ).scalar_one_or_none()
        if service is None:
            raise ServiceNotFound(service_id=uuid)
        if disabled is not None:
            service.disabled = disabled
            service.disabled_reason = disabled_reason if disabled else None
        if forced_down is not None:
            service.forced_down = forced_down
        return service


async def delete_service(db: Database, uuid: str) -> None:
    """Remove a service record. A compute service takes its host's resource providers,
    aggregate memberships and hypervisor records with it, but only while nothing is
    on them: instances recorded on the host or allocations against its providers
    make it a ComputeServiceInUse (409)."""
    async with db.transaction() as s:
        service = (await s.execute(select(Service).where(Service.uuid == uuid))
                   ).scalar_one_or_none()
        if service is None:
            raise ServiceNotFound(service_id=uuid)
        if service.binary == COMPUTE_BINARY:
            providers = list((await s.execute(
                select(ResourceProvider.uuid, ResourceProvider.generation).where(
                    ResourceProvider.host == service.host))).all())
            consumers = set((await s.execute(select(Instance.uuid).where(
                Instance.host == service.host, Instance.deleted.is_(False)))).scalars())
            allocated = await s.execute(select(Allocation.consumer_id).where(
                Allocation.provider_uuid.in_([p.uuid for p in providers])).distinct())
            # A resize holds its new flavor as consumer '<instance uuid>:resize'.
            consumers.update(c.partition(":")[0] for c in allocated.scalars())
            if consumers:
                raise ComputeServiceInUse(binary=service.binary, host=service.host,
                                          count=len(consumers),
                                          uuids=", ".join(sorted(consumers)[:5]))
            for provider_uuid, generation in providers:
                # The generation guard: a claim that landed since the count bumped it.
                gone = await s.execute(delete(ResourceProvider).where(
                    ResourceProvider.uuid == provider_uuid,
                    ResourceProvider.generation == generation))
                if rows_matched(gone) != 1:
                    raise ComputeServiceChanged(binary=service.binary, host=service.host)
            # As Nova: the host leaves its aggregates (else they could never be
            # emptied: remove_host wants a known host) and its hypervisor records.
            await s.execute(delete(AggregateHost).where(AggregateHost.host == service.host))
            await s.execute(delete(ComputeNode).where(ComputeNode.host == service.host))
        await s.delete(service)


async def compute_is_up(db: Database, host: str, down_time: float) -> bool:
    """Whether `host` runs a compute service that is up."""
    try:
        return is_up(await find_service(db, host, "nova-compute"), down_time)
    except HostBinaryNotFound:
        return False


def is_up(service: Service, down_time: float, now: dt.datetime | None = None) -> bool:
    """Up: not forced down and heard from within `down_time` seconds."""
    if service.forced_down or service.last_seen_up is None:
        return False
    return ((now or utcnow()) - service.last_seen_up).total_seconds() <= down_time
