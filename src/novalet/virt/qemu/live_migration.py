"""A live migration's source side over QMP: the disks mirrored into the destination's
NBD exports, then the memory streamed, with the [qemu] live_migration_* choices.

The sequence (one QMP session held for the whole job; abort and force-complete
reach it through a MigrationControl, not through a second session, since a
QEMU serves one QMP client at a time):

1. capabilities (events, pause-before-switchover, auto-converge and postcopy-ram
   when permitted) and parameters (max-bandwidth, the first downtime-limit);
2. per exported disk: an NBD client node on the destination's export and a
   blockdev-mirror into it (sync top for an overlay over the same base image,
   full otherwise), until every mirror is READY;
3. `migrate` to tcp:ADDRESS:PORT. The source stops at pre-switchover (the
   guest paused, its memory almost all copied): every mirror is completed
   (block-job-cancel on a READY job leaves the target an exact copy) and only
   then `migrate-continue`: the destination, started without -S, runs the guest
   as soon as the last state arrives, on complete disks.

Before the switch (migrate-continue, or migrate-start-postcopy when
force-complete or the completion timeout switch to post-copy), an abort or a
failure cancels the mirrors and the migration and the guest runs on here as it
was (QEMU resumes a guest it stopped itself; one that force-complete paused is
resumed here). From the switch on, the destination may run the guest: abort is
refused (LiveMigrationNotAbortable), and a failure in post-copy is raised as
LiveMigrationFailedAfterHandOver, nothing taken back here (the guest's memory is
split between the hosts).

Progress reports go out from a background task (ProgressSender): a slow or
failing conductor neither lengthens the job nor stops it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from novalet import config
from novalet.compute.driver_types import (LiveMigrationAborted, LiveMigrationFailedAfterHandOver,
                                          LiveMigrationNotAbortable, MigrationProgress)
from novalet.compute.move_payloads import MoveTarget, uri_host
from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.migration_pace import JOBS_INTERVAL, MIRROR_POLL, memory_delay
from novalet.virt.qemu.monitor import Monitor, MonitorCommandFailed

LOG = logging.getLogger(__name__)

MiB = 1 << 20
GiB = 1 << 30
UNLIMITED_BANDWIDTH = 1 << 40
"""max-bandwidth for "no limit" (QEMU's own default is 32 MiB/s)."""
PROGRESS_INTERVAL = 0.5
"""Seconds between two progress reports at least."""
FINAL_REPORT_TIMEOUT = 10.0
"""Seconds a finished job waits for its last progress report to go out."""
JOB_PREFIX = "migrate-"
TIMEOUT_ACTIONS = ("abort", "force_complete")

Progress = Callable[[MigrationProgress], Awaitable[None]]
UNFINISHED = ("setup", "active", "pre-switchover", "device", "wait-unplug")
"""Migration states in which the source still owns the guest and can take it back."""


class LiveMigrationFailed(VirtDriverError):
    msg_fmt = "Live migration of %(uuid)s failed: %(reason)s"


class LiveMigrationTimedOut(LiveMigrationFailed):
    msg_fmt = ("Live migration of %(uuid)s did not complete within %(timeout).0fs "
               "([qemu] live_migration_completion_timeout per GiB); aborted, the guest "
               "runs on here")


@dataclass(frozen=True)
class MigrationSettings:
    """The [qemu] live_migration_* options one job uses."""

    bandwidth_mib: int = 0
    downtime_ms: int = 500
    downtime_steps: int = 10
    downtime_delay: int = 75
    completion_timeout: int = 800
    timeout_action: str = "abort"
    post_copy: bool = False
    auto_converge: bool = False

    @classmethod
    def from_conf(cls, conf: config.Config) -> MigrationSettings:
        def opt(name: str) -> Any:
            return conf.get("qemu", f"live_migration_{name}")
        action = str(opt("timeout_action"))
        if action not in TIMEOUT_ACTIONS:
            raise VirtDriverError(reason=f"[qemu] live_migration_timeout_action must be one "
                                         f"of {', '.join(TIMEOUT_ACTIONS)}, not {action!r}")
        return cls(bandwidth_mib=max(0, int(opt("bandwidth"))),
                   downtime_ms=max(1, int(opt("downtime"))),
                   downtime_steps=max(1, int(opt("downtime_steps"))),
                   downtime_delay=max(0, int(opt("downtime_delay"))),
                   completion_timeout=max(0, int(opt("completion_timeout"))),
                   timeout_action=action, post_copy=bool(opt("permit_post_copy")),
                   auto_converge=bool(opt("permit_auto_converge")))

    def max_bandwidth(self) -> int:
        return self.bandwidth_mib * MiB if self.bandwidth_mib else UNLIMITED_BANDWIDTH

    def downtime_schedule(self, data_gib: float) -> list[tuple[float, int]]:
        """(seconds after the start, downtime-limit ms) steps, as Nova's: from
        downtime/steps up to downtime, one step every downtime_delay × data GiB."""
        steps = self.downtime_steps
        base = self.downtime_ms / steps
        offset = (self.downtime_ms - base) / steps
        delay = self.downtime_delay * data_gib
        return [(delay * i, int(base + offset * i)) for i in range(steps + 1)]

    def timeout(self, data_gib: float) -> float | None:
        return self.completion_timeout * data_gib if self.completion_timeout else None


def data_gib(memory_bytes: int, disk_bytes: list[int]) -> float:
    """GiB to copy as Nova weighs it for its timeouts: memory and each disk at least 2."""
    return max(memory_bytes / GiB, 2.0) + sum(max(size / GiB, 2.0) for size in disk_bytes)


def migration_uri(address: str, port: int) -> str:
    """tcp:HOST:PORT for QEMU, from checked parts (IPv6 addresses in brackets)."""
    return f"tcp:{uri_host(address)}:{port}"


class MigrationControl:
    """What live_migration_abort and live_migration_force_complete ask a running job."""

    def __init__(self, abort: bool = False) -> None:
        self.abort = abort
        self.force = False
        # Set before the command that starts them is sent: from then on the
        # destination may run the guest, and an abort could leave it on both hosts
        # (switch-over) or destroy the only copy (post-copy).
        self.switching = False
        self.post_copy = False
        self.changed = asyncio.Event()

    def ask_abort(self, uuid: str) -> None:
        if self.post_copy:
            raise LiveMigrationNotAbortable(uuid=uuid, reason=(
                "it runs in post-copy (the guest runs on the destination)"))
        if self.switching:
            raise LiveMigrationNotAbortable(uuid=uuid, reason=(
                "it is switching over (the destination is taking the last state)"))
        self.abort = True
        self.changed.set()

    def ask_force(self) -> None:
        self.force = True
        self.changed.set()


@dataclass
class Outcome:
    total_s: float
    downtime_ms: int


class ProgressSender:
    """A job's progress reports, sent one at a time from a background task: the
    newest waiting report replaces older ones; a failure is logged, never the job's."""

    def __init__(self, uuid: str, progress: Progress) -> None:
        self.uuid = uuid
        self.progress = progress
        self.waiting: MigrationProgress | None = None
        self.task: asyncio.Task[None] | None = None

    def offer(self, report: MigrationProgress) -> None:
        self.waiting = report
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self.waiting is not None:
            report, self.waiting = self.waiting, None
            try:
                await self.progress(report)
            except Exception as exc:  # noqa: BLE001 - a report is no part of the move
                LOG.warning("Progress report of the live migration of %s not sent: %s",
                            self.uuid, exc)

    async def flush(self, timeout: float | None = None) -> None:
        """Wait (at most `timeout`, FINAL_REPORT_TIMEOUT by default) for what was
        offered to go out."""
        if self.task is None:
            return
        timeout = FINAL_REPORT_TIMEOUT if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            LOG.warning("The last progress report of %s did not go out within %.0fs",
                        self.uuid, timeout)
            self.close()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


class SourceMigration:
    """One live migration's QMP sequence on the source's QEMU (see the module's doc)."""

    def __init__(self, mon: Monitor, uuid: str, settings: MigrationSettings,
                 control: MigrationControl, progress: Progress) -> None:
        self.mon = mon
        self.uuid = uuid
        self.settings = settings
        self.control = control
        self.reports = ProgressSender(uuid, progress)
        self.jobs: list[str] = []  # mirror jobs (and their NBD nodes) made
        self.completed_jobs: set[str] = set()
        self.migrating = False
        self.was_running = False
        self.post_copy_capable = False
        self.forced = False
        self.limit = 0  # the downtime-limit (ms) set last
        self.last: MigrationProgress = MigrationProgress()
        self.reported_at = 0.0
        self.job_info: dict[str, dict[str, Any]] = {}
        self.jobs_at = 0.0  # when the mirror jobs were looked at last

    async def run(self, target: MoveTarget, memory_bytes: int,
                  disk_bytes: list[int]) -> Outcome:
        """migrate(), then the last progress report sent."""
        outcome = await self.migrate(target, memory_bytes, disk_bytes)
        await self.reports.flush()
        return outcome

    async def migrate(self, target: MoveTarget, memory_bytes: int,
                      disk_bytes: list[int]) -> Outcome:
        """The migration, done once QEMU said completed; the last progress report may
        still be on its way (self.reports.flush() waits for it)."""
        started = time.monotonic()
        gib = data_gib(memory_bytes, disk_bytes)
        status = (await self.mon.execute("query-status"))["status"]
        self.was_running = status == "running"
        try:
            await self._set_capabilities(bool(target.disks))
            schedule = self.settings.downtime_schedule(gib)
            self.limit = schedule[0][1]
            await self.mon.execute("migrate-set-parameters", {
                "max-bandwidth": self.settings.max_bandwidth(), "downtime-limit": self.limit})
            await self._start_mirrors(target)
            info = await self._follow(target, started, schedule[1:], self.settings.timeout(gib))
        except BaseException as exc:
            self.reports.close()
            if self.control.post_copy:
                LOG.error("Live migration of %s failed in post-copy (%s): the guest's memory "
                          "is split between the hosts and can't come back here", self.uuid, exc)
                if isinstance(exc, Exception):
                    raise LiveMigrationFailedAfterHandOver(
                        uuid=self.uuid, dest=target.address, reason=str(exc)) from exc
                raise
            LOG.warning("Live migration of %s stopped (%s); leaving the guest here",
                        self.uuid, exc)
            await self._roll_back()
            raise
        return Outcome(time.monotonic() - started, int(info.get("downtime", 0)))

    async def _set_capabilities(self, mirrors: bool) -> None:
        wanted = {"events": True, "pause-before-switchover": mirrors,
                  "auto-converge": self.settings.auto_converge}
        await self.mon.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": name, "state": state} for name, state in wanted.items()]})
        if self.settings.post_copy:
            try:
                await self.mon.execute("migrate-set-capabilities", {"capabilities": [
                    {"capability": "postcopy-ram", "state": True}]})
                self.post_copy_capable = True
            except VirtDriverError as exc:  # e.g. no userfaultfd on this host
                LOG.warning("Post-copy is permitted but QEMU refuses it (%s); force-complete "
                            "of %s will pause the guest instead", exc, self.uuid)

    async def _start_mirrors(self, target: MoveTarget) -> None:
        assert target.nbd_port is not None or not target.disks
        for drive in target.disks:
            job = JOB_PREFIX + drive
            await self.mon.execute("blockdev-add", {
                "driver": "nbd", "node-name": job, "export": drive,
                "server": {"type": "inet", "host": target.address,
                           "port": str(target.nbd_port)}})
            self.jobs.append(job)
            await self.mon.execute("blockdev-mirror", {
                "job-id": job, "device": drive, "target": job,
                "sync": "top" if drive in target.overlays else "full",
                "auto-dismiss": False})

    # --- following the job ------------------------------------------------------------

    async def _follow(self, target: MoveTarget, started: float,
                      steps: list[tuple[float, int]], timeout: float | None) -> dict[str, Any]:
        memory: dict[str, Any] = {}
        while True:
            jobs = await self._mirror_jobs()
            if not self.migrating and all(j["status"] == "ready" for j in jobs.values()):
                assert target.memory_port is not None
                await self.mon.execute("migrate", {
                    "uri": migration_uri(target.address, target.memory_port)})
                self.migrating = True
            if self.migrating:
                memory = await self.mon.execute("query-migrate")
                status = memory.get("status")
                # once: QEMU may still say pre-switchover just after migrate-continue,
                # and its mirrors are dismissed by then (block-job-cancel: not found)
                if status == "pre-switchover" and not self.control.switching:
                    await self._complete_mirrors()
                    self.jobs_at = 0.0  # they are gone: look again before reporting
                    if self.control.abort:  # asked while the mirrors completed
                        raise LiveMigrationAborted(uuid=self.uuid)
                    self.control.switching = True
                    await self.mon.execute("migrate-continue", {"state": "pre-switchover"})
                    continue
                if status == "completed":
                    await self._report(memory, jobs, force=True)
                    return memory
                if status in ("failed", "cancelled"):
                    raise LiveMigrationFailed(uuid=self.uuid, reason=memory.get(
                        "error-desc", f"QEMU's migration ended {status}"))
            await self._report(memory, jobs)
            elapsed = time.monotonic() - started
            await self._obey(elapsed, timeout)
            while steps and elapsed >= steps[0][0]:
                self.limit = steps.pop(0)[1]
                LOG.debug("Live migration of %s: downtime-limit %d ms", self.uuid, self.limit)
                await self.mon.execute("migrate-set-parameters", {"downtime-limit": self.limit})
            await self._wait(self._poll_delay(memory))

    def _poll_delay(self, memory: dict[str, Any]) -> float:
        if not self.migrating:
            return MIRROR_POLL
        return memory_delay(memory, self.limit)

    async def _mirror_jobs(self) -> dict[str, dict[str, Any]]:
        """_jobs() at each look until the memory streams, then every JOBS_INTERVAL
        (the mirrors are READY: see migration_pace)."""
        now = time.monotonic()
        if not self.migrating or now - self.jobs_at >= JOBS_INTERVAL:
            self.job_info, self.jobs_at = await self._jobs(), now
        return self.job_info

    async def _jobs(self) -> dict[str, dict[str, Any]]:
        """Our mirror jobs by id; a failure when one failed or vanished."""
        if not self.jobs:
            return {}
        found = {j["id"]: j for j in await self.mon.execute("query-jobs")
                 if j.get("id") in self.jobs}
        for job in self.jobs:
            info = found.get(job)
            if job in self.completed_jobs:
                continue
            if info is None or info.get("error") or info["status"] in (
                    "aborting", "concluded", "null"):
                reason = (info or {}).get("error") or f"the copy of disk {job[len(JOB_PREFIX):]} " \
                                                       "stopped"
                raise LiveMigrationFailed(uuid=self.uuid, reason=f"disk copy: {reason}")
        return found

    async def _obey(self, elapsed: float, timeout: float | None) -> None:
        """Act on abort, force-complete and the completion timeout."""
        if self.control.abort:
            raise LiveMigrationAborted(uuid=self.uuid)
        if timeout is not None and elapsed > timeout and not self.forced:
            if self.settings.timeout_action == "abort":
                raise LiveMigrationTimedOut(uuid=self.uuid, timeout=timeout)
            LOG.warning("Live migration of %s passed its %.0fs completion timeout; forcing "
                        "it to complete", self.uuid, timeout)
            self.control.force = True
        if self.control.force and not self.forced:
            await self._force()

    async def _force(self) -> None:
        if self.post_copy_capable:
            if self.migrating:  # post-copy starts only once memory flows
                self.forced = True
                LOG.info("Live migration of %s: switching to post-copy", self.uuid)
                self.control.post_copy = True
                try:
                    await self.mon.execute("migrate-start-postcopy")
                except MonitorCommandFailed:
                    self.control.post_copy = False  # QEMU refused: still pre-copy
                    raise
                self.reported_at = 0.0  # report the switch at the next look
            return
        self.forced = True
        if self.was_running:
            LOG.info("Live migration of %s: pausing the guest so that it completes",
                     self.uuid)
            await self.mon.execute("stop")

    async def _wait(self, delay: float) -> None:
        self.control.changed.clear()
        try:
            await asyncio.wait_for(self.control.changed.wait(), delay)
        except TimeoutError:
            pass

    async def _report(self, memory: dict[str, Any], jobs: dict[str, dict[str, Any]],
                      force: bool = False) -> None:
        ram = memory.get("ram") or {}
        disk_total = sum(int(j.get("total-progress", 0)) for j in jobs.values())
        disk_done = sum(int(j.get("current-progress", 0)) for j in jobs.values())
        if self.completed_jobs and not jobs:
            disk_total, disk_done = self.last.disk_total, self.last.disk_total
        total = int(ram.get("total", 0)) or self.last.memory_total
        done = int(ram.get("transferred", 0)) or self.last.memory_processed
        remaining = (0 if memory.get("status") == "completed"
                     else int(ram.get("remaining", total - done)))
        self.last = MigrationProgress(total, done, remaining, disk_total, disk_done,
                                      max(0, disk_total - disk_done), self.control.post_copy)
        now = time.monotonic()
        if force or now - self.reported_at >= PROGRESS_INTERVAL:
            self.reported_at = now
            self.reports.offer(self.last)

    # --- the end of the mirrors, and rolling back ------------------------------------

    async def _complete_mirrors(self) -> None:
        """The guest is paused at pre-switchover: finish every mirror (an exact copy)."""
        for job in self.jobs:
            await self.mon.execute("block-job-cancel", {"device": job})
        for job in self.jobs:
            info = await self._until_concluded(job)
            await self.mon.execute("job-dismiss", {"id": job})
            self.completed_jobs.add(job)
            if info.get("error"):
                raise LiveMigrationFailed(uuid=self.uuid, reason=f"disk copy: {info['error']}")

    async def _until_concluded(self, job: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = next((j for j in await self.mon.execute("query-jobs") if j["id"] == job),
                        None)
            if info is None or info["status"] == "concluded":
                return info or {}
            if time.monotonic() > deadline:
                raise LiveMigrationFailed(uuid=self.uuid,
                                          reason=f"job {job} did not end within {timeout:.0f}s")
            await asyncio.sleep(0.002)

    async def _roll_back(self) -> None:
        """Cancel what runs; the guest runs here as before. Best effort, each step."""
        if self.migrating:
            await self._quietly("migrate_cancel")
            await self._until_migration_ends()
        for job in self.jobs:
            if job not in self.completed_jobs:
                await self._quietly("block-job-cancel", {"device": job, "force": True})
                await self._quietly_until_concluded(job)
                await self._quietly("job-dismiss", {"id": job})
            await self._quietly("blockdev-del", {"node-name": job})
        if self.was_running:
            status = await self.mon.execute("query-status")
            if status["status"] != "running":
                await self.mon.execute("cont")

    async def _until_migration_ends(self) -> None:
        for _ in range(500):
            info = await self.mon.execute("query-migrate")
            if info.get("status") not in (*UNFINISHED, "cancelling"):
                return
            await asyncio.sleep(0.01)

    async def _quietly_until_concluded(self, job: str) -> None:
        try:
            await self._until_concluded(job, timeout=10.0)
        except VirtDriverError as exc:
            LOG.warning("Live migration of %s: %s", self.uuid, exc)

    async def _quietly(self, command: str, arguments: dict[str, Any] | None = None) -> None:
        await quietly(self.mon, f"rolling back the live migration of {self.uuid}", command,
                      arguments)


async def quietly(mon: Monitor, what: str, command: str,
                  arguments: dict[str, Any] | None = None) -> None:
    """A QMP command whose refusal is no failure of `what` (logged)."""
    try:
        await mon.execute(command, arguments)
    except VirtDriverError as exc:
        LOG.info("%s: %s: %s", what, command, exc)


async def cancel_orphan(mon: Monitor, uuid: str) -> bool:
    """Take back a guest whose live migration lost its job (the compute service
    restarted meanwhile): nothing would complete its mirrors at pre-switchover,
    where it would stay paused. Whether there was one to cancel."""
    info = await mon.execute("query-migrate")
    jobs = [j["id"] for j in await mon.execute("query-jobs")
            if str(j.get("id", "")).startswith(JOB_PREFIX)]
    if info.get("status") not in UNFINISHED and not jobs:
        return False
    LOG.warning("Cancelling the live migration of %s (%s) that no job follows any more; "
                "the guest stays here", uuid, info.get("status"))
    if info.get("status") in UNFINISHED:
        await mon.execute("migrate_cancel")
    for job in jobs:
        for command, arguments in (("block-job-cancel", {"device": job, "force": True}),
                                   ("job-dismiss", {"id": job}),
                                   ("blockdev-del", {"node-name": job})):
            await quietly(mon, f"cancelling the live migration of {uuid}", command, arguments)
    return True
