"""How often a live migration's source looks at QEMU (query-migrate, query-jobs).

Every look is a QMP round trip that takes CPU from this process and QEMU's main
loop; on a busy host that CPU comes out of the migration thread and the guest's
vCPUs, whose race decides whether a guest that writes its memory converges. So
the looks are paced by how soon they can matter:

- the memory stream is looked at often (SWITCHOVER_POLL) when QEMU expects the
  rest to fit in the downtime limit: it may then stop the guest at any sync of
  its dirty pages. But QEMU answers the downtime limit itself as its expectation
  until it has measured a first pass, so during that pass (dirty-sync-count 1),
  the longest part of a migration, the expectation alone would have us look every
  2 ms throughout: there the looks come often only once, at the rate sent so far,
  the rest of the pass goes within a few looks;
- otherwise every MEMORY_POLL;
- the disk mirrors, READY before the memory starts, only every JOBS_INTERVAL
  from then on (a mirror that fails meanwhile is seen there, or when it is
  completed at pre-switchover).
"""

from __future__ import annotations

from typing import Any

MEMORY_POLL = 0.01
"""Seconds between two looks at the memory stream while it is far from its end."""
SWITCHOVER_POLL = 0.002
"""Seconds between two looks near its end: the guest waits paused at pre-switchover
until one sees it, and that is downtime."""
MIRROR_POLL = 0.01
"""Seconds between two looks at the disk mirrors until they are READY (the memory
stream starts only then)."""
JOBS_INTERVAL = 0.1
"""Seconds between two looks at the READY mirrors while the memory streams."""


class PollPace:
    """The delay before the next look at a migration, from QEMU's last answers."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None  # (when, bytes sent) at the first look

    def delay(self, memory: dict[str, Any], limit_ms: int, now: float) -> float:
        """Seconds until the next look, given query-migrate's answer at `now`
        (monotonic) and the downtime limit (ms) in force."""
        ram = memory.get("ram") or {}
        sent = int(ram.get("transferred", 0))
        if self.first is None and memory.get("status") == "active":
            self.first = (now, sent)
        expected = memory.get("expected-downtime")
        if expected is None or expected > limit_ms:
            return MEMORY_POLL
        if int(ram.get("dirty-sync-count", 1)) >= 2:  # a measured expectation
            return SWITCHOVER_POLL
        left = self._seconds_left(int(ram.get("remaining", 0)), sent, now)
        return min(MEMORY_POLL, max(SWITCHOVER_POLL, left / 2))

    def _seconds_left(self, remaining: int, sent: int, now: float) -> float:
        """Seconds until the pass runs out of pages at the mean rate so far (0 when
        nothing remains; far off while nothing was measured yet)."""
        if remaining <= 0:
            return 0.0
        if self.first is None or now <= self.first[0] or sent <= self.first[1]:
            return MEMORY_POLL * 2
        rate = (sent - self.first[1]) / (now - self.first[0])
        return remaining / rate
