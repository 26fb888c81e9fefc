"""The scheduler: filters, weighs and claims resources for build requests."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import random
import time
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.periodic import Periodic
from novalet.compute.move_payloads import MoveSpec
from novalet.compute.payloads import Destination, RequestSpec
from novalet.db import placement, services
from novalet.db.engine import Database
from novalet.db.models import utcnow
from novalet.rpc.bus import Bus
from novalet.scheduler import filters, group_filters, hint_filters, hypervisor_match, weighers
from novalet.scheduler.rpcapi import TOPIC

LOG = logging.getLogger(__name__)
_CLAIM_RETRIES = 10
_HOSTS_PER_ATTEMPT = 3  # claims tried on the best hosts before re-reading them
BINARY = "nova-scheduler"


class NoValidHost(exceptions.NovaletError):
    msg_fmt = "No valid host was found. %(reason)s"
    code = 500


class HostStateCache:
    """The hosts as the scheduler sees them, kept between requests.

    Each request reads only what changed since the last one (minus a margin for
    transactions that committed late): compute services and providers whose
    rows were updated, then the summaries of providers whose generation moved
    (every claim, allocation removal and inventory update bumps it). Everything
    is re-read every FULL_REFRESH_SECONDS, which also forgets deleted hosts. The
    claim itself compares generations in the database, so a stale entry costs a
    retry (after which that provider is re-read), never an over-commit."""

    FULL_REFRESH_SECONDS = 10.0
    MARGIN = dt.timedelta(seconds=2)

    def __init__(self, db: Database, down_time: float) -> None:
        self.db = db
        self.down_time = down_time
        self.providers: dict[str, placement.ProviderSummary] = {}
        self.services: dict[str, placement.ComputeServiceState] = {}
        self._states: dict[str, filters.HostState] = {}
        self._order: list[str] = []  # provider uuids by name
        self._since: dt.datetime | None = None
        self._full_at = 0.0

    async def host_states(self) -> list[filters.HostState]:
        full = (self._since is None
                or time.monotonic() - self._full_at > self.FULL_REFRESH_SECONDS)
        read_at = utcnow()
        snap = await placement.scheduler_snapshot(self.db, None if full else self._since)
        if not full and snap.provider_count < len(self.providers):  # some were deleted
            full = True
            snap = await placement.scheduler_snapshot(self.db, None)
        if full:
            self.services = snap.services
            for gone in set(self.providers) - set(snap.generations):
                del self.providers[gone]
                self._states.pop(gone, None)
            self._full_at = time.monotonic()
        else:
            self.services.update(snap.services)
        changed = [uuid for uuid, gen in snap.generations.items()
                   if uuid not in self.providers or self.providers[uuid].generation != gen]
        await self.reread(changed)
        if full or changed:
            self._order = sorted(self.providers, key=lambda u: self.providers[u].name)
        self._since = read_at - self.MARGIN
        return self._current(snap.aggregate_metadata)

    async def reread(self, uuids: list[str]) -> None:
        """Fresh summaries of these providers (e.g. after a claim on one lost)."""
        if not uuids:
            return
        fresh = (await placement.summaries(self.db, with_zones=False)
                 if len(uuids) > 200 else await placement.summaries_of(self.db, uuids))
        for provider in fresh:
            self.providers[provider.uuid] = provider
            state = self._states.get(provider.uuid)
            if state is not None:
                state.provider = provider
        found = {p.uuid for p in fresh}
        for gone in [u for u in uuids if u not in found and u in self.providers]:
            del self.providers[gone]  # deleted meanwhile
            self._states.pop(gone, None)
            if gone in self._order:
                self._order.remove(gone)

    def _current(self, metadata: dict[str, dict[str, set[str]]]) -> list[filters.HostState]:
        now = utcnow()
        states = []
        for uuid in self._order:
            provider = self.providers[uuid]
            state = self._states.get(uuid)
            if state is None:
                state = self._states[uuid] = filters.HostState(
                    provider=provider, service_up=False, service_disabled=False)
            service = self.services.get(provider.host)
            state.service_up = service is not None and _is_up(service, self.down_time, now)
            state.service_disabled = bool(service and service.disabled)
            state.disabled_reason = service.disabled_reason if service else None
            state.aggregate_metadata = metadata.get(provider.host, {})
            states.append(state)
        return states


class SchedulerManager:
    RPC_VERSION = "1.1"

    def __init__(self, conf: config.Config, db: Database, bus: Bus) -> None:
        self.conf = conf
        self.db = db
        self.bus = bus
        self.filters = filters.enabled_filters(conf)
        self.weighers = weighers.enabled_weighers(conf)
        self.host_subset_size = max(1, conf.get("filter_scheduler", "host_subset_size"))
        self.cache = HostStateCache(db, conf.get("DEFAULT", "service_down_time"))
        # Seconds from select_destinations' start to each instance's claim, the
        # request's shared start-up (reading host states) split over its instances.
        self.decision_times: collections.deque[float] = collections.deque(maxlen=200_000)
        # The same in CPU seconds of this process (a loaded machine inflates the above).
        self.decision_cpu_times: collections.deque[float] = collections.deque(maxlen=200_000)
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
        """Claim a host for every instance of the spec, or for none (NoValidHost):
        Destination models."""
        request = RequestSpec.from_dict(spec)
        chosen: list[Destination] = []
        try:
            async with self._claim_lock:
                started, started_cpu = time.perf_counter(), time.process_time()
                hosts = await self._same_hypervisor(request, request.instance_uuids,
                                                    await self._host_states())
                # Server groups and hints (helper modules group_filters, hint_filters).
                await group_filters.load_group_hosts(self.db, request)
                await hint_filters.load_hinted_hosts(self.db, request)
                for host_filter in self.filters:
                    await host_filter.prepare(request, self.db)
                count = max(1, len(request.instance_uuids))
                shared = (time.perf_counter() - started) / count
                shared_cpu = (time.process_time() - started_cpu) / count
                once: list[filters.HostState] | None = None  # passed the once-filters
                for uuid in request.instance_uuids:
                    began, began_cpu = time.perf_counter(), time.process_time()
                    if once is None:
                        once = self._run_once_filters(hosts, request)
                    chosen.append(await self._filter_and_claim(uuid, request, hosts, once))
                    self.decision_times.append(shared + time.perf_counter() - began)
                    self.decision_cpu_times.append(
                        shared_cpu + time.process_time() - began_cpu)
        except NoValidHost:
            for done in chosen:
                await placement.remove_allocations(self.db, done.instance_uuid)
            raise
        return [destination.to_dict() for destination in chosen]

    async def select_move_destination(self, ctx: RequestContext, spec: dict[str, Any]
                                      ) -> dict[str, Any]:
        """A claimed destination for one move (1.1): the filters and weighers of a
        build over every host but the ignored ones (the source of a migration), the
        claim made for the move's own consumer (the instance keeps its source
        allocations until the move is confirmed or over). Its server group's
        (anti-)affinity holds, the moving instance not counted among the members.
        NoValidHost otherwise."""
        move = MoveSpec.from_dict(spec)
        request = move.spec
        # The moving instance (spec_for's) never counts in its own group's members.
        moving = [u for u in request.instance_uuids if u != move.consumer]
        request.instance_uuids = [move.consumer]
        async with self._claim_lock:
            hosts = [h for h in await self._host_states() if h.host not in move.ignore_hosts]
            hosts = await self._same_hypervisor(request, moving, hosts)
            await group_filters.load_group_hosts(self.db, request, unplaced=moving)
            await hint_filters.load_hinted_hosts(self.db, request)
            for host_filter in self.filters:
                await host_filter.prepare(request, self.db)
            if not hosts:
                raise NoValidHost(reason="Every host was set aside for this move: "
                                  + ", ".join(move.ignore_hosts) + ".")
            return (await self._filter_and_claim(move.consumer, request, hosts,
                                                 moving=moving)).to_dict()

    async def _same_hypervisor(self, request: RequestSpec, moving: list[str],
                               hosts: list[filters.HostState]) -> list[filters.HostState]:
        """Of `hosts`, those of the hypervisor type of the host the one server being
        moved is on (hypervisor_match); every host for a build. NoValidHost when the
        host asked for, or every host, is of another type."""
        rule = await hypervisor_match.rule_for(self.db, moving[0]) if len(moving) == 1 else None
        if rule is None:
            return hosts
        if request.force_host and not rule.allows(request.force_host):
            raise NoValidHost(reason=rule.refusal(request.force_host))
        kept = [h for h in hosts if rule.allows(h.host)]
        if hosts and not kept:
            raise NoValidHost(reason=rule.none_left())
        return kept

    def _run_once_filters(self, hosts: list[filters.HostState], spec: RequestSpec
                          ) -> list[filters.HostState] | None:
        """The hosts passing every run_filter_once_per_request filter, for the rest of
        a multi-instance request; None when there is one instance (nothing to save)."""
        if len(spec.instance_uuids) < 2:
            return None
        once = [f for f in self.filters if f.run_filter_once_per_request]
        passed, report = filters.run_filters(hosts, spec, once)
        if not passed:
            raise NoValidHost(reason=_explain(report))
        return passed

    async def _filter_and_claim(self, uuid: str, spec: RequestSpec,
                                hosts: list[filters.HostState],
                                once: list[filters.HostState] | None = None,
                                moving: list[str] | None = None) -> Destination:
        """Claim on the best host. `hosts` is kept current after each claim of ours
        and refreshed from the cache only when a claim loses a race. `once`: the hosts
        that passed the once-per-request filters (None: run every filter on `hosts`).
        `moving`: a move's instance, never one of its group's members."""
        lost: list[str] = []  # providers whose claim lost: re-read before the next try
        for attempt in range(_CLAIM_RETRIES):
            if attempt:
                once = None
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))
                await self.cache.reread(lost)
                lost = []
                hosts[:] = [h for h in hosts if h.provider.uuid in self.cache.providers]
                # The group's members too: the claim lost may have been to one.
                await group_filters.load_group_hosts(
                    self.db, spec, unplaced=spec.instance_uuids[
                        spec.instance_uuids.index(uuid):] + (moving or []))
            if once is not None:
                passed, report = filters.run_filters(once, spec, self.filters,
                                                     skip_once=True)
            else:
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
                    return Destination(instance_uuid=uuid, host=host.host,
                                       node=provider.name, availability_zone=host.zone)
                lost.append(provider.uuid)
                if len(lost) >= _HOSTS_PER_ATTEMPT:  # stale view, or a group claim raced
                    break
        raise NoValidHost(reason="Every claim raced with another scheduler; try again.")

    def _ordered(self, passed: list[filters.HostState], spec: RequestSpec
                 ) -> list[filters.HostState]:
        """Best first; with host_subset_size N, one of the N best (at random) first."""
        ordered = weighers.weigh(passed, spec, self.weighers,
                                 limit=max(_HOSTS_PER_ATTEMPT, self.host_subset_size))
        if self.host_subset_size > 1 and len(ordered) > 1:
            pick = random.randrange(min(self.host_subset_size, len(ordered)))
            ordered.insert(0, ordered.pop(pick))
        return ordered

    async def _host_states(self) -> list[filters.HostState]:
        return await self.cache.host_states()


def _is_up(service: placement.ComputeServiceState, down_time: float,
           now: dt.datetime) -> bool:
    """As db.services.is_up: not forced down and heard from within down_time seconds."""
    if service.forced_down or service.last_seen_up is None:
        return False
    return (now - service.last_seen_up).total_seconds() <= down_time


def _explain(report: list[str]) -> str:
    if not report:
        return "There are no compute hosts."
    return "There are not enough hosts available. " + "; ".join(report) + "."
