"""Host filters: each says why a host can't take the request, or passes it.

Adding a filter (e.g. in a module of its own under novalet/scheduler/):

    from novalet.scheduler.filters import HostFilter, HostState, register

    @register
    class SameHostFilter(HostFilter):
        name = "SameHostFilter"          # the name [filter_scheduler] enabled_filters uses

        def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
            ...                           # None: passes; else a short reason

Every module of the novalet.scheduler package is imported before names are
resolved (see `discover`), so registering is all a new module has to do. A
filter that needs data per request (e.g. a server group's hosts) reads it in
`async prepare(spec, db)`, which runs once per select_destinations call before
any host is checked; `claimed(host, spec, instance_uuid)` then tells it each
host chosen for an instance of the same request (anti-affinity across a
multi-create). Filter objects live as long as the scheduler, so keep per-request
state keyed by, or reset in, prepare. `HostState.aggregate_metadata` holds the
host's aggregate metadata; weighers register the same way in weighers.py.
"""

from __future__ import annotations

import importlib
import logging
import operator
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from novalet import config
from novalet.compute.payloads import RequestSpec
from novalet.db.engine import Database
from novalet.db.placement import ProviderSummary

LOG = logging.getLogger(__name__)
AZ_KEY = "availability_zone"


@dataclass
class HostState:
    provider: ProviderSummary
    service_up: bool
    service_disabled: bool
    disabled_reason: str | None = None
    # {key: values} over every aggregate the host is in.
    aggregate_metadata: dict[str, set[str]] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.provider.host

    @property
    def zone(self) -> str:
        """The zone of the host's aggregates, else the one its compute service reports
        (that host's [DEFAULT] default_availability_zone)."""
        zones = self.aggregate_metadata.get(AZ_KEY)
        if zones:
            return ",".join(sorted(zones))
        return self.provider.availability_zone


class HostFilter:
    name = "HostFilter"
    # True: the answer can't change between the instances of one request (it reads
    # nothing a claim changes), so a multi-create runs it once, as Nova's attribute.
    run_filter_once_per_request = False

    def applies(self, spec: RequestSpec) -> bool:
        """False when the request asks nothing of this filter (it would pass every
        host): run_filters then skips the per-host loop. The default: it applies."""
        return True

    async def prepare(self, spec: RequestSpec, db: Database) -> None:
        """Called once per request before reject_reason; the default does nothing."""

    def claimed(self, host: HostState, spec: RequestSpec, instance_uuid: str) -> None:
        """Called after `host` was claimed for one instance of the request."""

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        """None when the host passes; otherwise why it doesn't."""
        raise NotImplementedError


F = TypeVar("F", bound=type[HostFilter])
FILTERS: dict[str, type[HostFilter]] = {}


def register(cls: F) -> F:
    """Make a filter class available to [filter_scheduler] enabled_filters by its name."""
    FILTERS[cls.name] = cls
    return cls


@register
class ComputeFilter(HostFilter):
    name = "ComputeFilter"
    run_filter_once_per_request = True

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        if host.service_disabled:
            return f"compute service disabled ({host.disabled_reason or 'no reason given'})"
        if not host.service_up:
            return "compute service is down"
        return None


@register
class AvailabilityZoneFilter(HostFilter):
    name = "AvailabilityZoneFilter"
    run_filter_once_per_request = True

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.availability_zone)

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        wanted = spec.availability_zone
        if wanted and wanted not in host.zone.split(","):
            return f"in zone {host.zone}, not {wanted}"
        return None


class ForcedHostFilter(HostFilter):
    """availability_zone=zone:host:node (admins): always runs, before the others."""

    name = "ForcedHostFilter"
    run_filter_once_per_request = True

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.force_host or spec.force_node)

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        if spec.force_host and host.host != spec.force_host:
            return f"not the requested host {spec.force_host}"
        if spec.force_node and host.provider.name != spec.force_node:
            return f"not the requested node {spec.force_node}"
        return None


_UNITS = {"VCPU": "vCPU", "MEMORY_MB": "MB RAM", "DISK_GB": "GB disk"}


class ResourcesFilter(HostFilter):
    """Placement's job: enough free VCPU, MEMORY_MB and DISK_GB after allocation ratios.
    Always runs, first."""

    name = "ResourcesFilter"

    def __init__(self) -> None:
        self._wanted: list[tuple[str, int]] = []

    def applies(self, spec: RequestSpec) -> bool:
        # run_filters asks this once before the host loop: keep what is asked for.
        self._wanted = [(rc, amount) for rc, amount in spec.resources.items() if amount]
        return bool(self._wanted)

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        capacity, used = host.provider.capacity, host.provider.used
        for rc, amount in self._wanted:  # the common case, fast: it fits
            if capacity.get(rc, 0) - used.get(rc, 0) < amount:
                break
        else:
            return None
        short = [f"{host.provider.free(rc)} {_UNITS[rc]} free, {amount} needed"
                 for rc, amount in spec.resources.items()
                 if amount and host.provider.free(rc) < amount]
        return "; ".join(short)


# --- aggregate metadata against flavor extra specs ---------------------------

EXTRA_SPECS_SCOPE = "aggregate_instance_extra_specs"


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def check(value: str, wanted: str) -> bool:
        try:
            return compare(float(value), float(wanted))
        except ValueError:
            return False
    return check


# Nova's extra spec operators: "<op> <operand>"; no operator means string equality.
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "=": _numeric(operator.ge),  # at least, as Nova reads '='
    "==": _numeric(operator.eq), "!=": _numeric(operator.ne),
    ">=": _numeric(operator.ge), "<=": _numeric(operator.le),
    "s==": operator.eq, "s!=": operator.ne, "s<": operator.lt, "s<=": operator.le,
    "s>": operator.gt, "s>=": operator.ge,
    "<in>": lambda value, wanted: wanted in value,
}


def extra_spec_matches(value: str, requirement: str) -> bool:
    """Does a host's value satisfy a flavor's requirement (with Nova's operators:
    =, ==, !=, >=, <=, s==, s!=, s<, s<=, s>, s>=, <in>, <all-in>, <or>)?"""
    words = requirement.split()
    if not words:
        return value == requirement
    op = words[0]
    if op == "<or>":
        options = [w for w in words[1:] if w != "<or>"]
        return value in options
    if op == "<all-in>":
        return all(w in value.split() for w in words[1:])
    check = _OPERATORS.get(op)
    if check is None or len(words) < 2:
        return value == requirement
    return check(value, " ".join(words[1:]))


@register
class AggregateInstanceExtraSpecsFilter(HostFilter):
    """Flavor extra specs scoped aggregate_instance_extra_specs:KEY (or unscoped KEY)
    must be matched by the metadata KEY of one of the host's aggregates; specs of
    other scopes (hw:, quota:, ...) are not this filter's business."""

    name = "AggregateInstanceExtraSpecsFilter"
    run_filter_once_per_request = True

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.extra_specs)

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        for key, requirement in spec.extra_specs.items():
            scope, _, rest = key.partition(":")
            if rest:
                if scope != EXTRA_SPECS_SCOPE:
                    continue
                key = rest
            values = host.aggregate_metadata.get(key)
            if not values:
                return f"no aggregate metadata {key} (flavor asks {requirement!r})"
            if not any(extra_spec_matches(v, requirement) for v in values):
                return f"aggregate metadata {key}={sorted(values)} doesn't match {requirement!r}"
        return None


@register
class AggregateMultiTenancyIsolation(HostFilter):
    """A host in aggregates with filter_tenant_id* metadata takes only those projects."""

    name = "AggregateMultiTenancyIsolation"
    run_filter_once_per_request = True

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        allowed = {project.strip()
                   for key, values in host.aggregate_metadata.items()
                   if key.startswith("filter_tenant_id")
                   for value in values for project in value.split(",")}
        if allowed and spec.project_id not in allowed:
            return f"isolated to other projects than {spec.project_id}"
        return None


# --- choosing and running filters -------------------------------------------

ALWAYS_FIRST: tuple[type[HostFilter], ...] = (ResourcesFilter, ForcedHostFilter)
_discovered = False


def discover() -> None:
    """Import every module of novalet.scheduler so their @register lines have run."""
    global _discovered
    if _discovered:
        return
    package = importlib.import_module("novalet.scheduler")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("manager", "rpcapi"):
            importlib.import_module(f"novalet.scheduler.{module.name}")
    _discovered = True


def names_of(option: str) -> list[str]:
    return [n.strip() for n in option.split(",") if n.strip()]


def enabled_filters(conf: config.Config) -> list[HostFilter]:
    """The always-on checks, then [filter_scheduler] enabled_filters in its order."""
    discover()
    chosen: list[HostFilter] = [cls() for cls in ALWAYS_FIRST]
    for name in names_of(conf.get("filter_scheduler", "enabled_filters")):
        cls = FILTERS.get(name.rsplit(".", 1)[-1])
        if cls is None:
            LOG.warning("Scheduler filter %s is not known here; skipped. Known: %s",
                        name, ", ".join(sorted(FILTERS)))
            continue
        chosen.append(cls())
    return chosen


# The checks of a scheduler with no configuration to read (tests).
DEFAULT_FILTERS: list[HostFilter] = [ComputeFilter(), ForcedHostFilter(),
                                     AvailabilityZoneFilter(), ResourcesFilter()]


def run_filters(hosts: list[HostState], spec: RequestSpec, filters: list[HostFilter],
                skip_once: bool = False) -> tuple[list[HostState], list[str]]:
    """Hosts that pass every filter, and one line per filter that removed any.
    skip_once: `hosts` already passed the run_filter_once_per_request filters."""
    remaining, report = hosts, []
    for host_filter in filters:
        if skip_once and host_filter.run_filter_once_per_request:
            continue
        if not host_filter.applies(spec):
            continue
        passed, removed = [], []
        reject_reason = host_filter.reject_reason
        for host in remaining:
            reason = reject_reason(host, spec)
            if reason is None:
                passed.append(host)
            else:
                removed.append(f"{host.host} ({reason})")
        if removed:
            shown = ", ".join(removed[:10]) + (f" and {len(removed) - 10} more"
                                               if len(removed) > 10 else "")
            report.append(f"{host_filter.name} removed {len(removed)} host(s): {shown}")
        remaining = passed
        if not remaining:
            break
    return remaining, report
