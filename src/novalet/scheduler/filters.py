"""Host filters: each says why a host can't take the request, or passes it."""

from __future__ import annotations

from dataclasses import dataclass

from novalet.compute.payloads import RequestSpec
from novalet.db.placement import ProviderSummary


@dataclass
class HostState:
    provider: ProviderSummary
    service_up: bool
    service_disabled: bool
    disabled_reason: str | None = None

    @property
    def host(self) -> str:
        return self.provider.host


class HostFilter:
    name = "HostFilter"

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        """None when the host passes; otherwise why it doesn't."""
        raise NotImplementedError


class ComputeFilter(HostFilter):
    name = "ComputeFilter"

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        if host.service_disabled:
            return f"compute service disabled ({host.disabled_reason or 'no reason given'})"
        if not host.service_up:
            return "compute service is down"
        return None


class AvailabilityZoneFilter(HostFilter):
    name = "AvailabilityZoneFilter"

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        wanted = spec.availability_zone
        if wanted and host.provider.availability_zone != wanted:
            return f"in zone {host.provider.availability_zone}, not {wanted}"
        return None


class ForcedHostFilter(HostFilter):
    name = "ForcedHostFilter"

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        if spec.force_host and host.host != spec.force_host:
            return f"not the requested host {spec.force_host}"
        if spec.force_node and host.provider.name != spec.force_node:
            return f"not the requested node {spec.force_node}"
        return None


_UNITS = {"VCPU": "vCPU", "MEMORY_MB": "MB RAM", "DISK_GB": "GB disk"}


class ResourcesFilter(HostFilter):
    """Placement's job: enough free VCPU, MEMORY_MB and DISK_GB after allocation ratios."""

    name = "ResourcesFilter"

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        short = [f"{host.provider.free(rc)} {_UNITS[rc]} free, {amount} needed"
                 for rc, amount in spec.resources.items()
                 if amount and host.provider.free(rc) < amount]
        return "; ".join(short) or None


DEFAULT_FILTERS: list[HostFilter] = [ComputeFilter(), ForcedHostFilter(),
                                     AvailabilityZoneFilter(), ResourcesFilter()]


def run_filters(hosts: list[HostState], spec: RequestSpec, filters: list[HostFilter]
                ) -> tuple[list[HostState], list[str]]:
    """Hosts that pass every filter, and one line per filter that removed any."""
    remaining, report = hosts, []
    for host_filter in filters:
        passed, removed = [], []
        for host in remaining:
            reason = host_filter.reject_reason(host, spec)
            if reason is None:
                passed.append(host)
            else:
                removed.append(f"{host.host} ({reason})")
        if removed:
            report.append(f"{host_filter.name} removed {len(removed)} host(s): "
                          + ", ".join(removed))
        remaining = passed
    return remaining, report
