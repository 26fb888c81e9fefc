"""The scheduler: filters, weighs and claims resources for build requests."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.common.periodic import Periodic
from novalet.compute.payloads import RequestSpec
from novalet.db import placement, services
from novalet.db.engine import Database
from novalet.rpc.bus import Bus
from novalet.scheduler import filters, weighers
from novalet.scheduler.rpcapi import TOPIC

LOG = logging.getLogger(__name__)
_CLAIM_RETRIES = 10
BINARY = "nova-scheduler"


class NoValidHost(exceptions.NovaletError):
    msg_fmt = "No valid host was found. %(reason)s"
    code = 500


class SchedulerManager:
    RPC_VERSION = "1.0"

    def __init__(self, conf: config.Config, db: Database, bus: Bus) -> None:
        self.conf = conf
        self.db = db
        self.bus = bus
        self.filters = filters.DEFAULT_FILTERS
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
                hosts = await self._host_states()
                for uuid in request.instance_uuids:
                    chosen.append(await self._filter_and_claim(uuid, request, hosts))
        except NoValidHost:
            for done in chosen:
                await placement.remove_allocations(self.db, done["instance_uuid"])
            raise
        return chosen

    async def _filter_and_claim(self, uuid: str, spec: RequestSpec,
                                hosts: list[filters.HostState]) -> dict[str, Any]:
        """Claim on the best host. `hosts` is kept current after each claim of ours
        and re-read (in place) only when a claim loses a race."""
        for attempt in range(_CLAIM_RETRIES):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))
                hosts[:] = await self._host_states()
            passed, report = filters.run_filters(hosts, spec, self.filters)
            if not passed:
                raise NoValidHost(reason=_explain(report))
            for host in weighers.by_free_ram(passed):
                provider = host.provider
                if await placement.claim(self.db, uuid, provider.uuid, spec.resources,
                                         provider.generation):
                    provider.generation += 1
                    for rc, amount in spec.resources.items():
                        provider.used[rc] = provider.used.get(rc, 0) + amount
                    LOG.info("Placed %s on %s", uuid, host.host)
                    return {"instance_uuid": uuid, "host": host.host,
                            "node": provider.name, "provider_uuid": provider.uuid,
                            "availability_zone": provider.availability_zone}
        raise NoValidHost(reason="Every claim raced with another scheduler; try again.")

    async def _host_states(self) -> list[filters.HostState]:
        down_time = self.conf.get("DEFAULT", "service_down_time")
        by_host = {s.host: s for s in await services.list_services(self.db, "nova-compute")}
        states = []
        for provider in await placement.summaries(self.db):
            service = by_host.get(provider.host)
            states.append(filters.HostState(
                provider=provider,
                service_up=service is not None and services.is_up(service, down_time),
                service_disabled=bool(service and service.disabled),
                disabled_reason=service.disabled_reason if service else None))
        return states


def _explain(report: list[str]) -> str:
    if not report:
        return "There are no compute hosts."
    return "There are not enough hosts available. " + "; ".join(report) + "."
