"""The scheduler: filters, weighs and claims resources for build requests."""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.periodic import Periodic
from novalet.compute.payloads import RequestSpec
from novalet.db import aggregates, placement, services
from novalet.db.engine import Database
from novalet.rpc.bus import Bus
from novalet.scheduler import filters, group_filters, hint_filters, weighers
from novalet.scheduler.rpcapi import TOPIC

LOG = logging.getLogger(__name__)
_CLAIM_RETRIES = 10
BINARY = "nova-scheduler"


class NoValidHost(exceptions.NovaletError):
    msg_fmt = "No valid host was found. %(reason)s"
    code = 500


class HostStateCache:
    """Providers' capacity and usage, re-read only for providers whose generation
    moved (every claim, allocation removal and inventory update bumps it). The
    claim itself still compares generations in the database, so a stale entry can
    cost a retry, never an over-commit."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.providers: dict[str, placement.ProviderSummary] = {}

    async def refresh(self) -> list[placement.ProviderSummary]:
        generations = await placement.generations(self.db)
        changed = [uuid for uuid, gen in generations.items()
                   if uuid not in self.providers or self.providers[uuid].generation != gen]
        for gone in set(self.providers) - set(generations):
            del self.providers[gone]
        if changed:
            fresh = (await placement.summaries(self.db, with_zones=False)
                     if len(changed) > 20 else await placement.summaries_of(self.db, changed))
            self.providers.update((p.uuid, p) for p in fresh)
        return sorted(self.providers.values(), key=lambda p: p.name)


class SchedulerManager:
    RPC_VERSION = "1.0"

    def __init__(self, conf: config.Config, db: Database, bus: Bus) -> None:
        self.conf = conf
        self.db = db
        self.bus = bus
        self.filters = filters.enabled_filters(conf)
        self.weighers = weighers.enabled_weighers(conf)
        self.host_subset_size = max(1, conf.get("filter_scheduler", "host_subset_size"))
        self.cache = HostStateCache(db)
        # Seconds from select_destinations' start to each instance's claim, the
        # request's shared start-up (reading host states) split over its instances.
        self.decision_times: collections.deque[float] = collections.deque(maxlen=200_000)
        # One scheduler never races itself for a claim; several (multi-host) still
        # can, and then retry with a jittered back-off.
        self._claim_lock = asyncio.Lock()
        self.periodic = Periodic()

    async def start(self) -> None:
        await self.bus.serve(TOPIC, self)
        await self._heartbeat()
        self.periodic.every(self.conf.get("DEFAULT", "report_interval"), "heartbeat",
                            self._heartbeat)

    async def stop(self) -> None:
        await self.periodic.stop()

    async def _heartbeat(self) -> None:
        await services.heartbeat(self.db, self.conf.get("DEFAULT", "host"), BINARY, TOPIC)

    async def select_destinations(self, ctx: RequestContext, spec: dict[str, Any]
                                  ) -> list[dict[str, Any]]:
        """Claim a host for every instance of the spec, or for none (NoValidHost)."""
        request = RequestSpec.from_dict(spec)
        chosen: list[dict[str, Any]] = []
        try:
            async with self._claim_lock:
                started = time.perf_counter()
                hosts = await self._host_states()
                # Server groups and hints (helper modules group_filters, hint_filters).
                await group_filters.load_group_hosts(self.db, request)
                await hint_filters.load_hinted_hosts(self.db, request)
                for host_filter in self.filters:
                    await host_filter.prepare(request, self.db)
                shared = (time.perf_counter() - started) / max(1, len(request.instance_uuids))
                for uuid in request.instance_uuids:
                    began = time.perf_counter()
                    chosen.append(await self._filter_and_claim(uuid, request, hosts))
                    self.decision_times.append(shared + time.perf_counter() - began)
        except NoValidHost:
            for done in chosen:
                await placement.remove_allocations(self.db, done["instance_uuid"])
            raise
        return chosen

    async def _filter_and_claim(self, uuid: str, spec: RequestSpec,
                                hosts: list[filters.HostState]) -> dict[str, Any]:
        """Claim on the best host. `hosts` is kept current after each claim of ours
        and refreshed from the cache only when a claim loses a race."""
        for attempt in range(_CLAIM_RETRIES):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))
                await self._refresh(hosts)
                # The group's members too: the claim lost may have been to one.
                await group_filters.load_group_hosts(
                    self.db, spec, unplaced=spec.instance_uuids[
                        spec.instance_uuids.index(uuid):])
            passed, report = filters.run_filters(hosts, spec, self.filters)
            if not passed:
                raise NoValidHost(reason=_explain(report))
            for host in self._ordered(passed, spec):
                provider = host.provider
                if await placement.claim(self.db, uuid, provider.uuid, spec.resources,
                                         provider.generation,
                                         group=group_filters.claim_guard(spec)):
                    provider.generation += 1
                    for rc, amount in spec.resources.items():
                        provider.used[rc] = provider.used.get(rc, 0) + amount
                    group_filters.note_placed(spec, host.host)
                    for host_filter in self.filters:
                        host_filter.claimed(host, spec, uuid)
                    LOG.info("Placed %s on %s", uuid, host.host)
                    return {"instance_uuid": uuid, "host": host.host,
                            "node": provider.name, "provider_uuid": provider.uuid,
                            "availability_zone": host.zone}
        raise NoValidHost(reason="Every claim raced with another scheduler; try again.")

    def _ordered(self, passed: list[filters.HostState], spec: RequestSpec
                 ) -> list[filters.HostState]:
        """Best first; with host_subset_size N, one of the N best (at random) first."""
        ordered = weighers.weigh(passed, spec, self.weighers)
        if self.host_subset_size > 1 and len(ordered) > 1:
            pick = random.randrange(min(self.host_subset_size, len(ordered)))
            ordered.insert(0, ordered.pop(pick))
        return ordered

    async def _refresh(self, hosts: list[filters.HostState]) -> None:
        """Re-read what changed, keeping the list (and the services' states) in place."""
        fresh = {p.uuid: p for p in await self.cache.refresh()}
        hosts[:] = [h for h in hosts if h.provider.uuid in fresh]
        for host in hosts:
            host.provider = fresh[host.provider.uuid]

    async def _host_states(self) -> list[filters.HostState]:
        down_time = self.conf.get("DEFAULT", "service_down_time")
        by_host = {s.host: s for s in await services.list_services(self.db, "nova-compute")}
        metadata = await aggregates.metadata_by_host(self.db)
        states = []
        for provider in await self.cache.refresh():
            service = by_host.get(provider.host)
            states.append(filters.HostState(
                provider=provider,
                service_up=service is not None and services.is_up(service, down_time),
                service_disabled=bool(service and service.disabled),
                disabled_reason=service.disabled_reason if service else None,
                aggregate_metadata=metadata.get(provider.host, {})))
        return states


def _explain(report: list[str]) -> str:
    if not report:
        return "There are no compute hosts."
    return "There are not enough hosts available. " + "; ".join(report) + "."
