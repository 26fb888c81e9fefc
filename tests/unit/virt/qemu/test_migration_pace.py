"""How often a live migration's source looks at QEMU: at the memory stream often once
the rest fits in the downtime limit, at READY mirrors only now and then."""

from __future__ import annotations

import asyncio
from typing import Any

from novalet.compute.driver_types import MigrationProgress
from novalet.compute.move_payloads import MoveTarget
from novalet.virt.qemu.live_migration import MigrationControl, MigrationSettings, SourceMigration
from novalet.virt.qemu.migration_pace import (JOBS_INTERVAL, MEMORY_POLL, SWITCHOVER_POLL,
                                              memory_delay)

MiB = 1 << 20


def look(remaining_mib: float, sent_mib: float, expected: int | None = 50,
         status: str = "active") -> dict[str, Any]:
    answer: dict[str, Any] = {"status": status, "ram": {
        "remaining": int(remaining_mib * MiB), "transferred": int(sent_mib * MiB)}}
    if expected is not None:
        answer["expected-downtime"] = expected
    return answer


def test_the_memory_stream_is_looked_at_fast_once_the_rest_fits_in_the_limit() -> None:
    assert memory_delay(look(40, 100, expected=50), 50) == SWITCHOVER_POLL
    assert memory_delay(look(40, 100, expected=80), 50) == MEMORY_POLL
    assert memory_delay(look(40, 100, expected=80), 100) == SWITCHOVER_POLL
    assert memory_delay(look(0, 0, expected=None, status="setup"), 50) == MEMORY_POLL


class SlowPassQemu:
    """A source QEMU whose memory pass lasts `duration` seconds at an even rate, with
    READY mirrors; counts the looks."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.started = 0.0
        self.counts: dict[str, int] = {}
        self.jobs = {f"migrate-{d}": {"id": f"migrate-{d}", "status": "ready",
                                      "current-progress": MiB, "total-progress": MiB}
                     for d in ("root",)}

    async def pass_fd(self, name: str, fd: int) -> None:
        raise AssertionError("not used")

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        self.counts[command] = self.counts.get(command, 0) + 1
        loop = asyncio.get_running_loop()
        if command == "query-status":
            return {"status": "running"}
        if command == "migrate":
            self.started = loop.time()
        if command == "query-jobs":
            return list(self.jobs.values())
        if command == "block-job-cancel":
            self.jobs[arguments["device"]]["status"] = "concluded"  # type: ignore[index]
        if command == "job-dismiss":
            del self.jobs[arguments["id"]]  # type: ignore[index]
        if command == "query-migrate":
            done = min(1.0, (loop.time() - self.started) / self.duration)
            if done >= 1.0:
                return {"status": "completed" if not self.jobs else "pre-switchover",
                        "downtime": 5, "ram": {"total": 128 * MiB, "remaining": 0,
                                               "transferred": 128 * MiB}}
            return look(128 * (1 - done), 128 * done)
        return {}


async def test_ready_mirrors_are_looked_at_only_now_and_then() -> None:
    qemu = SlowPassQemu(duration=0.3)

    async def progress(report: MigrationProgress) -> None:
        pass

    job = SourceMigration(qemu, "u-1", MigrationSettings(), MigrationControl(), progress)
    target = MoveTarget(address="192.0.2.7", memory_port=49152, nbd_port=49153,
                        disks=["root"], overlays=["root"])
    outcome = await job.run(target, 128 * MiB, [MiB])
    assert outcome.downtime_ms == 5
    # the memory stream every 2 ms (QEMU expects the limit itself in its first pass);
    # the READY mirror only every JOBS_INTERVAL meanwhile (it was at every look)
    assert qemu.counts["query-migrate"] > 2 * qemu.counts["query-jobs"]
    assert qemu.counts["query-jobs"] <= 0.3 / JOBS_INTERVAL + 6
