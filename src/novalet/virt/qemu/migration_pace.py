"""How often a live migration's source looks at QEMU (query-migrate, query-jobs).

Every look is a QMP round trip that takes CPU from this process and QEMU's main
loop; on a busy host that CPU comes out of the migration thread and the guest's
vCPUs. So only the looks whose latency is downtime come often:

- the memory stream every SWITCHOVER_POLL once QEMU expects the rest to fit in
  the downtime limit (it may then stop the guest at pre-switchover at any sync of
  its dirty pages, and the guest waits paused until a look sees it), otherwise
  every MEMORY_POLL. (QEMU answers the limit itself as its expectation until it
  measured a first pass; looking less often in that pass saved CPU but was not
  shown to keep the downtime, so it is not done.)
- the disk mirrors every MIRROR_POLL until they are READY (the memory stream
  starts only then), and from then on only every JOBS_INTERVAL: a mirror that
  fails meanwhile is seen there, or when it is completed at pre-switchover.
"""

from __future__ import annotations

from typing import Any

MEMORY_POLL = 0.01
"""Seconds between two looks at the memory stream while it is far from its end."""
SWITCHOVER_POLL = 0.002
"""Seconds between two looks near its end: the guest waits paused at pre-switchover
until one sees it, and that is downtime."""
MIRROR_POLL = 0.01
"""Seconds between two looks at the disk mirrors until they are READY."""
JOBS_INTERVAL = 0.1
"""Seconds between two looks at the READY mirrors while the memory streams."""


def memory_delay(memory: dict[str, Any], limit_ms: int) -> float:
    """Seconds until the next look at the memory stream, from query-migrate's last
    answer and the downtime limit (ms) in force."""
    expected = memory.get("expected-downtime")
    return SWITCHOVER_POLL if expected is not None and expected <= limit_ms else MEMORY_POLL
