"""Host weighers: order the hosts that passed the filters, best first."""

from __future__ import annotations

from novalet.scheduler.filters import HostState


def by_free_ram(hosts: list[HostState], multiplier: float = 1.0) -> list[HostState]:
    """Spread (multiplier > 0) puts the host with most free RAM first; stack (< 0) the least."""
    return sorted(hosts, key=lambda h: multiplier * h.provider.free("MEMORY_MB"), reverse=True)
