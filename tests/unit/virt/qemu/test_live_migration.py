"""The source side of a QEMU live migration against a scripted QMP monitor: what it
asks QEMU for, from the [qemu] live_migration_* options, and how abort, failures,
timeouts and force-complete end it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from novalet import config
from novalet.compute.driver_types import (LiveMigrationAborted, LiveMigrationFailedAfterHandOver,
                                          LiveMigrationNotAbortable, MigrationProgress)
from novalet.compute.move_payloads import MoveTarget
from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu import live_migration
from novalet.virt.qemu.live_migration import (LiveMigrationFailed, LiveMigrationTimedOut,
                                              MigrationControl, MigrationSettings,
                                              SourceMigration, migration_uri)
from novalet.virt.qemu.live_moves import NoLiveMigration, SharedStorageRequired
from novalet.virt.qemu.monitor import MonitorCommandFailed

MiB = 1 << 20
TARGET = MoveTarget(address="192.0.2.7", memory_port=49152, nbd_port=49153,
                    disks=["root", "eph0"], overlays=["root"])
ACTIVE = {"status": "active", "ram": {"total": 128 * MiB, "transferred": 10 * MiB,
                                      "remaining": 118 * MiB}}
SWITCHOVER = {"status": "pre-switchover", "ram": {"total": 128 * MiB,
                                                  "transferred": 127 * MiB, "remaining": MiB}}
COMPLETED = {"status": "completed", "downtime": 7, "total-time": 900,
             "ram": {"total": 128 * MiB, "transferred": 128 * MiB, "remaining": 0}}


class ScriptedQemu:
    """A source QEMU: mirrors become ready on the next look, `query-migrate` answers
    from a script (its last entry repeats), hooks run on the n-th look."""

    def __init__(self, script: list[dict[str, Any]], refuse: set[str] | None = None) -> None:
        self.script = list(script)
        self.refuse = refuse or set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.status = "running"
        self.jobs: dict[str, dict[str, Any]] = {}
        self.cancelled = False
        self.hooks: dict[int, Callable[[], None]] = {}
        self.looks = 0

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def args(self, command: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == command]

    async def pass_fd(self, name: str, fd: int) -> None:
        raise AssertionError("not used")

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        args = arguments or {}
        self.calls.append((command, args))
        if command in self.refuse or (command == "migrate-set-capabilities" and any(
                c["capability"] in self.refuse for c in args["capabilities"])):
            raise MonitorCommandFailed(command=command, reason="refused by the test")
        if command == "query-status":
            return {"status": self.status}
        if command in ("stop", "cont"):
            self.status = "paused" if command == "stop" else "running"
        elif command == "blockdev-mirror":
            self.jobs[args["job-id"]] = {"id": args["job-id"], "status": "running",
                                         "current-progress": 0, "total-progress": 4 * MiB}
        elif command == "query-jobs":
            jobs = [dict(j) for j in self.jobs.values()]
            for job in self.jobs.values():
                if job["status"] == "running":
                    job.update(status="ready", **{"current-progress": 4 * MiB})
            return jobs
        elif command == "block-job-cancel":
            self.jobs[args["device"]]["status"] = "concluded"
        elif command == "job-dismiss":
            del self.jobs[args["id"]]
        elif command == "migrate_cancel":
            self.cancelled = True
        elif command == "query-migrate":
            return self._look()
        return {}

    def _look(self) -> dict[str, Any]:
        if self.cancelled:
            return {"status": "cancelled"}
        self.looks += 1
        if self.looks in self.hooks:
            self.hooks[self.looks]()
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


async def run(qemu: ScriptedQemu, control: MigrationControl | None = None,
              reports: list[MigrationProgress] | None = None,
              target: MoveTarget = TARGET, **settings: Any) -> live_migration.Outcome:
    collected = reports if reports is not None else []

    async def progress(report: MigrationProgress) -> None:
        collected.append(report)

    job = SourceMigration(qemu, "u-1", MigrationSettings(**settings),
                          control or MigrationControl(), progress)
    return await job.run(target, 128 * MiB, [4 * MiB, MiB])


async def test_settings_come_from_the_config_options() -> None:
    conf = config.Config()
    conf.set("qemu", "live_migration_bandwidth", "100")
    conf.set("qemu", "live_migration_permit_post_copy", "true")
    conf.set("qemu", "live_migration_timeout_action", "force_complete")
    settings = MigrationSettings.from_conf(conf)
    assert settings.max_bandwidth() == 100 * MiB and settings.post_copy
    assert settings.timeout_action == "force_complete" and settings.completion_timeout == 800
    assert MigrationSettings(bandwidth_mib=0).max_bandwidth() == 1 << 40  # not QEMU's 32 MiB/s
    conf.set("qemu", "live_migration_timeout_action", "reboot")
    with pytest.raises(VirtDriverError, match="abort, force_complete"):
        MigrationSettings.from_conf(conf)


def test_downtime_grows_in_steps_to_the_configured_limit() -> None:
    schedule = MigrationSettings(downtime_ms=500, downtime_steps=10,
                                 downtime_delay=75).downtime_schedule(4.0)
    assert schedule[0] == (0.0, 50) and schedule[-1] == (3000.0, 500) and len(schedule) == 11
    assert [ms for _, ms in schedule] == sorted(ms for _, ms in schedule)
    assert live_migration.data_gib(128 * MiB, [MiB, 3 << 30]) == 2 + 2 + 3


def test_uris_are_built_from_checked_parts() -> None:
    assert migration_uri("192.0.2.7", 49152) == "tcp:192.0.2.7:49152"
    assert migration_uri("2001:db8::1", 49152) == "tcp:[2001:db8::1]:49152"


async def test_disks_are_mirrored_then_memory_streams_and_mirrors_end_at_switchover() -> None:
    qemu = ScriptedQemu([ACTIVE, SWITCHOVER, COMPLETED])
    outcome = await run(qemu, auto_converge=True)
    assert outcome.downtime_ms == 7 and "stop" not in qemu.names()
    caps = {c["capability"]: c["state"]
            for c in qemu.args("migrate-set-capabilities")[0]["capabilities"]}
    assert caps == {"events": True, "pause-before-switchover": True, "auto-converge": True}
    assert qemu.args("migrate-set-parameters")[0] == {"max-bandwidth": 1 << 40,
                                                      "downtime-limit": 50}
    nodes = qemu.args("blockdev-add")
    assert [n["export"] for n in nodes] == ["root", "eph0"]
    assert nodes[0]["server"] == {"type": "inet", "host": "192.0.2.7", "port": "49153"}
    assert [(m["device"], m["sync"]) for m in qemu.args("blockdev-mirror")] == [
        ("root", "top"), ("eph0", "full")]
    assert qemu.args("migrate") == [{"uri": "tcp:192.0.2.7:49152"}]
    names = qemu.names()
    # memory moves only once the disks are in step; the destination runs only once
    # every mirror finished (pre-switchover, then migrate-continue)
    assert names.index("migrate") > max(i for i, n in enumerate(names) if n == "blockdev-mirror")
    cancels = [i for i, n in enumerate(names) if n == "block-job-cancel"]
    assert len(cancels) == 2 and max(cancels) < names.index("migrate-continue")
    assert "migrate_cancel" not in names and "postcopy-ram" not in str(qemu.calls)


async def test_a_late_pre_switchover_after_migrate_continue_ends_the_mirrors_once() -> None:
    """QEMU may answer pre-switchover once more right after migrate-continue: the
    mirrors, dismissed already, are not cancelled again (QEMU would refuse: block
    job not found) and the switch is not asked twice."""
    qemu = ScriptedQemu([ACTIVE, SWITCHOVER, SWITCHOVER, COMPLETED])
    outcome = await run(qemu)
    assert outcome.downtime_ms == 7
    assert qemu.names().count("block-job-cancel") == 2  # one per mirror
    assert qemu.names().count("migrate-continue") == 1


async def test_progress_is_reported_at_most_twice_a_second_and_at_the_end() -> None:
    qemu = ScriptedQemu([ACTIVE] * 20 + [SWITCHOVER, COMPLETED])
    reports: list[MigrationProgress] = []
    await run(qemu, reports=reports)
    assert 2 <= len(reports) <= 3  # the first look, maybe one 0.5 s later, the end
    assert reports[-1] == MigrationProgress(128 * MiB, 128 * MiB, 0, 8 * MiB, 8 * MiB, 0)
    assert reports[0].disk_total == 8 * MiB  # both mirrors' lengths


async def test_abort_cancels_everything_and_the_guest_runs_on() -> None:
    qemu = ScriptedQemu([ACTIVE])
    control = MigrationControl()
    qemu.hooks[3] = lambda: control.ask_abort("u-1")
    with pytest.raises(LiveMigrationAborted):
        await run(qemu, control)
    names = qemu.names()
    assert "migrate_cancel" in names and "migrate-continue" not in names
    assert [a for a in qemu.args("block-job-cancel")] == [
        {"device": "migrate-root", "force": True}, {"device": "migrate-eph0", "force": True}]
    assert [a["node-name"] for a in qemu.args("blockdev-del")] == ["migrate-root",
                                                                   "migrate-eph0"]
    assert qemu.status == "running" and "stop" not in names


async def test_a_failed_migration_cancels_the_mirrors_with_qemus_reason() -> None:
    qemu = ScriptedQemu([ACTIVE, {"status": "failed", "error-desc": "Connection reset"}])
    with pytest.raises(LiveMigrationFailed, match="Connection reset"):
        await run(qemu)
    assert len(qemu.args("block-job-cancel")) == 2 and len(qemu.args("blockdev-del")) == 2
    assert qemu.status == "running"


async def test_a_refused_migrate_command_leaves_the_guest_as_it_was() -> None:
    qemu = ScriptedQemu([ACTIVE], refuse={"migrate"})
    with pytest.raises(MonitorCommandFailed):
        await run(qemu)
    assert "migrate_cancel" not in qemu.names() and len(qemu.args("blockdev-del")) == 2


async def test_force_complete_pauses_the_guest_without_post_copy() -> None:
    qemu = ScriptedQemu([ACTIVE, ACTIVE, ACTIVE, SWITCHOVER, COMPLETED])
    control = MigrationControl()
    qemu.hooks[2] = control.ask_force
    await run(qemu, control)
    assert "stop" in qemu.names()
    assert "migrate-start-postcopy" not in qemu.names()


async def test_force_complete_switches_to_post_copy_when_permitted() -> None:
    qemu = ScriptedQemu([ACTIVE, ACTIVE, SWITCHOVER, {"status": "postcopy-active"},
                         COMPLETED])
    control = MigrationControl()
    qemu.hooks[2] = control.ask_force
    await run(qemu, control, post_copy=True)
    assert qemu.args("migrate-set-capabilities")[1] == {"capabilities": [
        {"capability": "postcopy-ram", "state": True}]}
    assert "migrate-start-postcopy" in qemu.names() and "stop" not in qemu.names()
    assert control.post_copy
    with pytest.raises(LiveMigrationNotAbortable, match="post-copy") as refused:
        control.ask_abort("u-1")
    assert refused.value.code == 400


async def test_post_copy_refused_by_qemu_falls_back_to_a_pause() -> None:
    qemu = ScriptedQemu([ACTIVE, ACTIVE, COMPLETED], refuse={"postcopy-ram"})
    control = MigrationControl()
    qemu.hooks[1] = control.ask_force
    await run(qemu, control, post_copy=True)
    assert "stop" in qemu.names()


async def test_the_completion_timeout_aborts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_migration, "data_gib", lambda memory, disks: 0.000001)
    qemu = ScriptedQemu([ACTIVE])
    with pytest.raises(LiveMigrationTimedOut, match="did not complete"):
        await run(qemu, completion_timeout=1)  # here, while the disks are copied
    assert len(qemu.args("block-job-cancel")) == 2 and qemu.status == "running"


async def test_the_completion_timeout_forces_when_so_configured(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_migration, "data_gib", lambda memory, disks: 0.000001)
    qemu = ScriptedQemu([ACTIVE, ACTIVE, ACTIVE, COMPLETED])
    await run(qemu, completion_timeout=1, timeout_action="force_complete")
    assert qemu.names().count("stop") == 1


async def test_a_paused_guest_stays_paused_after_an_abort() -> None:
    qemu = ScriptedQemu([ACTIVE])
    qemu.status = "paused"
    control = MigrationControl()
    qemu.hooks[2] = lambda: control.ask_abort("u-1")
    with pytest.raises(LiveMigrationAborted):
        await run(qemu, control)
    assert "cont" not in qemu.names() and qemu.status == "paused"


async def test_a_migration_left_by_a_previous_service_is_cancelled() -> None:
    qemu = ScriptedQemu([SWITCHOVER])
    qemu.jobs["migrate-root"] = {"id": "migrate-root", "status": "ready"}
    assert await live_migration.cancel_orphan(qemu, "u-1")
    assert qemu.names()[2:] == ["migrate_cancel", "block-job-cancel", "job-dismiss",
                                "blockdev-del"]
    assert not await live_migration.cancel_orphan(ScriptedQemu([COMPLETED]), "u-1")


async def test_the_driver_refuses_without_block_migration_and_unknown_jobs(
        driver: Any) -> None:
    with pytest.raises(SharedStorageRequired) as refused:
        await driver.live_migration("0" * 32, "host-2", False, None, TARGET)
    assert refused.value.code == 400 and "use block migration" in str(refused.value)
    with pytest.raises(NoLiveMigration) as nothing:
        await driver.live_migration_force_complete("0" * 32)
    assert nothing.value.code == 409
    assert driver.capabilities.supports_live_migrate


# --- B2: post-copy is marked when asked; a failure then is a handed-over one ------------

def asking_abort(control: MigrationControl, refusals: list[Exception]) -> Callable[[], None]:
    def ask() -> None:
        try:
            control.ask_abort("u-1")
        except LiveMigrationNotAbortable as exc:
            refusals.append(exc)
    return ask


async def test_b2_an_abort_after_migrate_start_postcopy_is_refused() -> None:
    """Between migrate-start-postcopy and QEMU's first `postcopy-active`, an abort used
    to be accepted: the conductor then destroyed the destination's (running) guest."""
    qemu = ScriptedQemu([ACTIVE, ACTIVE, ACTIVE, ACTIVE, COMPLETED])
    control = MigrationControl()
    refusals: list[Exception] = []
    qemu.hooks[2] = control.ask_force
    qemu.hooks[4] = asking_abort(control, refusals)  # QEMU still says active
    await run(qemu, control, post_copy=True)
    assert "migrate-start-postcopy" in qemu.names() and not control.abort
    assert len(refusals) == 1 and getattr(refusals[0], "code", None) == 400
    assert "migrate_cancel" not in qemu.names()


async def test_b2_a_failure_in_post_copy_is_raised_as_handed_over() -> None:
    qemu = ScriptedQemu([ACTIVE, ACTIVE, {"status": "postcopy-active"},
                         {"status": "failed", "error-desc": "Connection reset"}])
    control = MigrationControl()
    qemu.hooks[2] = control.ask_force
    with pytest.raises(LiveMigrationFailedAfterHandOver, match="Connection reset") as failed:
        await run(qemu, control, post_copy=True)
    assert not isinstance(failed.value, VirtDriverError)  # no "the guest runs on here"
    names = qemu.names()  # nothing taken back: the guest's memory is split
    assert "migrate_cancel" not in names and "cont" not in names
    assert "block-job-cancel" not in names[names.index("migrate-start-postcopy"):]


async def test_b2_progress_says_when_post_copy_started() -> None:
    qemu = ScriptedQemu([ACTIVE, ACTIVE, {**ACTIVE, "status": "postcopy-active"}, COMPLETED])
    control = MigrationControl()
    qemu.hooks[2] = control.ask_force
    reports: list[MigrationProgress] = []
    await run(qemu, control, reports=reports, post_copy=True)
    assert not reports[0].post_copy and reports[-1].post_copy


# --- M2: no abort once the switch-over started -------------------------------------------

async def test_m2_an_abort_after_migrate_continue_is_refused() -> None:
    """migrate_cancel in `device` resumes the source while the destination (started
    without -S) may have the whole stream: the guest would run on both hosts."""
    qemu = ScriptedQemu([ACTIVE, SWITCHOVER, {"status": "device"}, COMPLETED])
    control = MigrationControl()
    refusals: list[Exception] = []
    qemu.hooks[3] = asking_abort(control, refusals)
    await run(qemu, control)
    assert len(refusals) == 1 and "switching over" in str(refusals[0])
    assert getattr(refusals[0], "code", None) == 400 and "migrate_cancel" not in qemu.names()


async def test_m2_an_abort_at_pre_switchover_stops_before_the_switch() -> None:
    qemu = ScriptedQemu([ACTIVE, SWITCHOVER])
    control = MigrationControl()
    qemu.hooks[2] = lambda: control.ask_abort("u-1")  # while the mirrors complete
    with pytest.raises(LiveMigrationAborted):
        await run(qemu, control)
    assert "migrate-continue" not in qemu.names() and "migrate_cancel" in qemu.names()
    assert qemu.status == "running"


# --- M3: progress reports never hold the job up nor fail it ------------------------------

async def test_m3_a_failing_progress_report_does_not_fail_the_migration() -> None:
    qemu = ScriptedQemu([ACTIVE, ACTIVE, SWITCHOVER, COMPLETED])

    async def broken(report: MigrationProgress) -> None:
        raise RuntimeError("conductor unreachable")

    job = SourceMigration(qemu, "u-1", MigrationSettings(), MigrationControl(), broken)
    outcome = await job.run(TARGET, 128 * MiB, [4 * MiB, MiB])
    assert outcome.downtime_ms == 7 and "migrate_cancel" not in qemu.names()


async def test_m3_a_slow_conductor_does_not_slow_the_migration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports go out one at a time from a background task, the newest winning; the
    job waits for the last one only a bounded time."""
    monkeypatch.setattr(live_migration, "PROGRESS_INTERVAL", 0.0)  # a report per look
    monkeypatch.setattr(live_migration, "FINAL_REPORT_TIMEOUT", 0.05)
    qemu = ScriptedQemu([ACTIVE] * 30 + [SWITCHOVER, COMPLETED])
    never = asyncio.Event()
    sent: list[MigrationProgress] = []

    async def stuck(report: MigrationProgress) -> None:
        sent.append(report)
        await never.wait()

    job = SourceMigration(qemu, "u-1", MigrationSettings(), MigrationControl(), stuck)
    await asyncio.wait_for(job.run(TARGET, 128 * MiB, [4 * MiB, MiB]), 5)
    assert len(sent) == 1  # one in flight; the rest waited and were replaced
    assert job.reports.task is not None and job.reports.task.done()  # not left behind
