"""How often a live migration's source looks at QEMU: often only near the end of the
memory stream, and at READY mirrors only now and then."""

from __future__ import annotations

import asyncio
from typing import Any

from novalet.compute.driver_types import MigrationProgress
from novalet.compute.move_payloads import MoveTarget
from novalet.virt.qemu.live_migration import MigrationControl, MigrationSettings, SourceMigration
from novalet.virt.qemu.migration_pace import (JOBS_INTERVAL, MEMORY_POLL, SWITCHOVER_POLL,
                                              PollPace)

MiB = 1 << 20


def look(remaining_mib: float, sent_mib: float, expected: int | None = 50,
         status: str = "active", syncs: int = 1) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": status, "ram": {
        "remaining": int(remaining_mib * MiB), "transferred": int(sent_mib * MiB),
        "dirty-sync-count": syncs}}
    if expected is not None:
        answer["expected-downtime"] = expected
    return answer


def test_the_first_pass_is_looked_at_every_memory_poll_though_qemu_expects_the_limit() -> None:
    # QEMU answers the downtime limit as its expectation until it measured a pass:
    # 128 MiB left at ~1 GiB/s is ~0.1 s away, not worth a look every 2 ms.
    pace = PollPace()
    assert pace.delay(look(128, 0), 50, now=10.0) == MEMORY_POLL
    assert pace.delay(look(118, 10), 50, now=10.01) == MEMORY_POLL


def test_looks_come_fast_when_the_end_of_the_pass_is_near() -> None:
    pace = PollPace()
    pace.delay(look(128, 0), 50, now=10.0)
    # 100 MiB in 0.1 s: 1 MiB left is ~1 ms away
    assert pace.delay(look(1, 100), 50, now=10.1) == SWITCHOVER_POLL
    # 5 MiB left is ~5 ms away: the next look half-way there
    assert abs(pace.delay(look(5, 100), 50, now=10.1) - 0.0025) < 1e-9
    assert pace.delay(look(0, 100), 50, now=10.1) == SWITCHOVER_POLL


def test_after_the_first_pass_a_rest_within_the_limit_is_looked_at_fast() -> None:
    # QEMU measured a pass: it may stop the guest at its next sync, however many
    # bytes the pass still shows
    pace = PollPace()
    pace.delay(look(128, 0), 50, now=10.0)
    assert pace.delay(look(40, 130, syncs=2), 50, now=10.1) == SWITCHOVER_POLL
    assert pace.delay(look(40, 130, expected=80, syncs=3), 50, now=10.1) == MEMORY_POLL


def test_a_rest_over_the_downtime_limit_is_looked_at_every_memory_poll() -> None:
    pace = PollPace()
    pace.delay(look(128, 0), 50, now=10.0)
    assert pace.delay(look(1, 100, expected=80), 50, now=10.1) == MEMORY_POLL
    assert pace.delay(look(1, 100, expected=None), 50, now=10.1) == MEMORY_POLL
    assert pace.delay(look(1, 100, expected=80), 100, now=10.1) == SWITCHOVER_POLL


def test_nothing_measured_yet_is_far_off() -> None:
    pace = PollPace()
    assert pace.delay(look(128, 0, status="setup"), 50, now=10.0) == MEMORY_POLL
    assert pace.delay(look(128, 0), 50, now=10.0) == MEMORY_POLL  # no rate yet


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


async def test_a_long_pass_costs_few_looks_at_qemu() -> None:
    qemu = SlowPassQemu(duration=0.3)

    async def progress(report: MigrationProgress) -> None:
        pass

    job = SourceMigration(qemu, "u-1", MigrationSettings(), MigrationControl(), progress)
    target = MoveTarget(address="192.0.2.7", memory_port=49152, nbd_port=49153,
                        disks=["root"], overlays=["root"])
    outcome = await job.run(target, 128 * MiB, [MiB])
    assert outcome.downtime_ms == 5
    # every 10 ms through the pass, a few 2 ms looks at its end (every look was 2 ms
    # before: ~150 of them); the READY mirror only every JOBS_INTERVAL meanwhile
    assert qemu.counts["query-migrate"] < 0.3 / MEMORY_POLL + 15
    assert qemu.counts["query-jobs"] <= 0.3 / JOBS_INTERVAL + 6
