"""Handlers for os-availability-zone: the zones compute hosts are in, and (admin) their hosts."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest
from novalet.api.validation import accepts
from novalet.common.timeutils import isotime_micro
from novalet.compute.services import API_BINARIES, COMPUTE_BINARY, INTERNAL_ZONE
from novalet.db import placement, services
from novalet.db.models import Service
from novalet.policy import enforce


async def _zones(req: ApiRequest) -> tuple[dict[str, str], list[Service]]:
    """{host: zone} of the compute nodes, and every service record."""
    default = req.app.conf.get("DEFAULT", "default_availability_zone")
    host_zone = {p.host: p.availability_zone or default
                 for p in await placement.summaries(req.app.db)}
    return host_zone, await services.list_services(req.app.db)


def _zone_states(host_zone: dict[str, str], records: list[Service]) -> dict[str, bool]:
    """Each zone and whether it is available: a zone is while one of its hosts
    has an enabled compute service (or no service record to say otherwise)."""
    computes = {s.host: s for s in records if s.binary == COMPUTE_BINARY}
    states: dict[str, bool] = {}
    for host, zone in host_zone.items():
        enabled = host not in computes or not computes[host].disabled
        states[zone] = states.get(zone, False) or enabled
    return states


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, "os_compute_api:os-availability-zone:list")
    host_zone, records = await _zones(req)
    states = _zone_states(host_zone, records)
    ordered = sorted(states, key=lambda z: (not states[z], z))
    return {"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": states[zone]}, "hosts": None}
        for zone in ordered]}


@accepts()
async def detail(req: ApiRequest) -> dict[str, Any]:
    """Zones with their hosts and enabled services; 'internal' holds non-compute ones."""
    enforce(req.ctx, "os_compute_api:os-availability-zone:detail")
    host_zone, records = await _zones(req)
    states = _zone_states(host_zone, records)
    default = req.app.conf.get("DEFAULT", "default_availability_zone")
    down_time = req.app.conf.get("DEFAULT", "service_down_time")
    hosts: dict[str, dict[str, dict[str, Any]]] = {}
    for service in records:
        if service.disabled or service.binary in API_BINARIES:
            continue
        zone = (host_zone.get(service.host, default) if service.binary == COMPUTE_BINARY
                else INTERNAL_ZONE)
        states.setdefault(zone, True)
        hosts.setdefault(zone, {}).setdefault(service.host, {})[service.binary] = {
            "available": services.is_up(service, down_time), "active": True,
            "updated_at": isotime_micro(service.updated_at or service.last_seen_up)}
    ordered = sorted(states, key=lambda z: (not states[z], z != INTERNAL_ZONE, z))
    return {"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": states[zone]},
         "hosts": hosts.get(zone, {}) if states[zone] else None} for zone in ordered]}
