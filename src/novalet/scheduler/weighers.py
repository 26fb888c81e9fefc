"""Host weighers: order the hosts that passed the filters, best first.

Each weigher gives every host a raw value; the values of one weigher are scaled
to 0..1 over the hosts being weighed (all equal: all 0), multiplied by its
multiplier, and summed over weighers: Nova's normalisation. Register a weigher
with @register (name as [filter_scheduler] weight_classes spells it).
"""

from __future__ import annotations

import heapq
import logging
from typing import TypeVar

from novalet import config
from novalet.compute.payloads import RequestSpec
from novalet.scheduler.filters import HostState, discover, names_of

LOG = logging.getLogger(__name__)


class HostWeigher:
    name = "HostWeigher"
    multiplier_option: str | None = None  # [filter_scheduler] option with the multiplier

    def __init__(self, conf: config.Config) -> None:
        self.multiplier: float = (conf.get("filter_scheduler", self.multiplier_option)
                                  if self.multiplier_option else 1.0)

    def applies(self, spec: RequestSpec) -> bool:
        """False when this weigher would weigh every host alike for the request
        (weigh() then skips it). The default: it applies."""
        return True

    def raw_weight(self, host: HostState, spec: RequestSpec) -> float:
        raise NotImplementedError

    def raw_weights(self, hosts: list[HostState], spec: RequestSpec) -> list[float]:
        """Every host's raw weight; override for speed (a thousand hosts per instance)."""
        return [self.raw_weight(h, spec) for h in hosts]


class FreeResourceWeigher(HostWeigher):
    """Free amount of one resource class (after allocation ratios)."""

    resource_class = ""

    def raw_weight(self, host: HostState, spec: RequestSpec) -> float:
        return host.provider.free(self.resource_class)

    def raw_weights(self, hosts: list[HostState], spec: RequestSpec) -> list[float]:
        rc = self.resource_class
        return [h.provider.capacity.get(rc, 0) - h.provider.used.get(rc, 0) for h in hosts]


W = TypeVar("W", bound=type[HostWeigher])
WEIGHERS: dict[str, type[HostWeigher]] = {}


def register(cls: W) -> W:
    WEIGHERS[cls.name] = cls
    return cls


@register
class RAMWeigher(FreeResourceWeigher):
    name = "RAMWeigher"
    multiplier_option = "ram_weight_multiplier"
    resource_class = "MEMORY_MB"


@register
class CPUWeigher(FreeResourceWeigher):
    name = "CPUWeigher"
    multiplier_option = "cpu_weight_multiplier"
    resource_class = "VCPU"


@register
class DiskWeigher(FreeResourceWeigher):
    name = "DiskWeigher"
    multiplier_option = "disk_weight_multiplier"
    resource_class = "DISK_GB"


def enabled_weighers(conf: config.Config) -> list[HostWeigher]:
    """[filter_scheduler] weight_classes: names (or Nova's dotted paths), or 'all'."""
    discover()
    wanted = names_of(conf.get("filter_scheduler", "weight_classes"))
    if any(n in ("all", "nova.scheduler.weights.all_weighers") for n in wanted):
        return [cls(conf) for cls in WEIGHERS.values()]
    chosen = []
    for name in wanted:
        cls = WEIGHERS.get(name.rsplit(".", 1)[-1])
        if cls is None:
            LOG.warning("Scheduler weigher %s is not known here; skipped. Known: %s",
                        name, ", ".join(sorted(WEIGHERS)))
            continue
        chosen.append(cls(conf))
    return chosen


def normalize(values: list[float]) -> list[float]:
    """Scale to 0..1 (lowest 0, highest 1); all equal: all 0."""
    low, high = min(values), max(values)
    if high == low:
        return [0.0] * len(values)
    span = high - low
    return [(v - low) / span for v in values]


def weigh(hosts: list[HostState], spec: RequestSpec, weighers: list[HostWeigher],
          limit: int | None = None) -> list[HostState]:
    """The hosts best first: the sum over weighers of multiplier x normalised weight.
    With `limit`, only that many best (cheaper than ordering a thousand hosts)."""
    if len(hosts) < 2 or not weighers:
        return list(hosts)[:limit]
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        if not weigher.multiplier or not weigher.applies(spec):
            continue
        raw = weigher.raw_weights(hosts, spec)
        low, high = min(raw), max(raw)
        if high == low:  # normalised, every host weighs 0
            continue
        factor = weigher.multiplier / (high - low)  # normalise and multiply at once
        totals = [t + (v - low) * factor for t, v in zip(totals, raw, strict=True)]
    if limit is not None and limit < len(hosts):
        order = heapq.nlargest(limit, range(len(hosts)), key=totals.__getitem__)
    else:
        order = sorted(range(len(hosts)), key=totals.__getitem__, reverse=True)
    return [hosts[i] for i in order]


def by_free_ram(hosts: list[HostState], multiplier: float = 1.0) -> list[HostState]:
    """Spread (multiplier > 0) puts the host with most free RAM first; stack (< 0) the least."""
    return sorted(hosts, key=lambda h: multiplier * h.provider.free("MEMORY_MB"), reverse=True)
