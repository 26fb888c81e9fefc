#!/usr/bin/env python3
"""Live migration benchmark: total time and downtime through the API beside the same
migration done by hand over QMP.

For each guest size (--sizes) and load (idle, or dirtying: user data that keeps
rewriting --dirty-fraction of its RAM with random bytes from a tmpfs file),
--rounds migrations back and forth between two hosts that share no storage
(block migration), done two ways in one run:

- by hand: two qemu-system-x86_64 processes of the test image with the QEMU
  driver's own command line; "hand total" runs from the start of the
  destination's preparation (config drive copied, empty overlay, QEMU started
  with -incoming defer, NBD export, drive-mirror until ready) to the
  destination running after `cont`; "hand mem" only from QMP `migrate` on.
  Downtime is QEMU's `downtime` (query-migrate on the source). "iters" is
  QEMU's dirty-sync-count, "sent MiB" the guest memory it sent: above the
  guest's size (or more iterations than idle) shows the dirtying is seen.
- through the API: a server booted on host bench-a of a multi-process cloud
  (see bench/api_migration.py), `os-migrateLive` to the other host with
  block_migration auto; "API total" runs from the POST to the migration
  `completed` and the server ACTIVE on the other host (both read side by side
  every 20 ms until both say so); "API drv" and "API
  down" are what the source compute's driver logged ("Live migration of <uuid>
  done in <s>s, downtime <ms> ms"): its own span, and QEMU's downtime.

When both sides run, they run while the cloud is up, size by size and load by
load: a hand-made guest and a server are booted, then the rounds take turns (hand
first in even rounds, the API first in odd ones), so that each side's guest is up
(idle or dirtying) while the other's moves and both share the same background load
and the same moments of the machine's other work.

Prints medians over the rounds and API minus hand, against the targets (total
within 0.5 s, downtime within 50 ms). Asserts nothing. Without live migration in
the QEMU driver the API columns say n/a and the exit code is still 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from api_migration import WHERE, ApiMigrations, two_qemu_hosts, unavailable_reason
from migration_figures import Case, Sample, dirtying_user_data, format_table
from qmp_migration import HandMigrations
from realcloud import bench_image

from novalet import config
from novalet.service.local_deployment import LocalDeployment

T = TypeVar("T")
IDLE_USER_DATA = "#!/bin/sh\n"
LOADS = ("idle", "dirtying")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Columns and what each one covers: see the top of bench/migrate.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512], metavar="MIB",
                        help="guest memory sizes (MiB) to migrate")
    parser.add_argument("--loads", nargs="+", choices=LOADS, default=list(LOADS),
                        help="what the guest does while it moves")
    parser.add_argument("--rounds", type=int, default=5,
                        help="migrations per size and load and side (medians are shown)")
    parser.add_argument("--dirty-fraction", type=float, default=0.35,
                        help="share of the guest's RAM the dirtying guest keeps rewriting")
    parser.add_argument("--settle", type=float, default=2.0, metavar="SECONDS",
                        help="wait after a guest said it is ready, before its first move "
                             "(its boot's last work done)")
    parser.add_argument("--only", choices=("hand", "api"),
                        help="run one side only (default: both)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (QEMU and service logs) after the run; "
                             "processes are stopped either way")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 0 < args.dirty_fraction <= 0.5:
        parser.error("--rounds must be at least 1 and --dirty-fraction within (0, 0.5] "
                     "(more and a 128 MiB guest runs out of memory)")
    return args


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def user_data(memory_mb: int, load: str, fraction: float) -> str:
    return dirtying_user_data(memory_mb, fraction) if load == "dirtying" else IDLE_USER_DATA


async def run_hand(args: argparse.Namespace, cases: list[Case], work: Path,
                   image: Path) -> None:
    hand = HandMigrations(work, image, config.Config())
    try:
        for case in cases:
            load = "dirtying" if case.dirtying else "idle"
            progress(f"by hand, {case.label}: booting the guest")
            guest = await hand.boot(case.memory_mb,
                                    user_data(case.memory_mb, load, args.dirty_fraction))
            await asyncio.sleep(args.settle)
            for n in range(args.rounds):
                guest, sample = await hand.migrate(guest)
                case.hand.append(sample)
                progress(hand_line(case, n, sample))
            hand.stop_all()
    finally:
        hand.stop_all()


def hand_line(case: Case, n: int, sample: Sample) -> str:
    return (f"by hand, {case.label}, round {n + 1}: {sample.total_s:.2f} s "
            f"(memory pass {sample.memory_pass_s or 0:.2f} s), "
            f"downtime {sample.downtime_ms:.0f} ms, {sample.iterations} "
            f"iterations, {sample.sent_mib or 0:.0f} MiB sent")


def api_line(case: Case, n: int, sample: Sample) -> str:
    downtime = "not logged" if sample.downtime_ms is None else f"{sample.downtime_ms:.0f} ms"
    driver = "" if sample.driver_s is None else f" (driver {sample.driver_s:.2f} s)"
    return (f"through the API, {case.label}, round {n + 1}: {sample.total_s:.2f} s{driver}, "
            f"downtime {downtime}")


class Interleaved:
    """Both sides case by case, their rounds taking turns (hand first in even rounds,
    the API first in odd ones), each side's guest up while the other's moves: the
    same background load for both. An API side that fails stops; the hand side goes
    on (`failed` says why)."""

    def __init__(self, args: argparse.Namespace, hand: HandMigrations | None,
                 api: ApiMigrations | None) -> None:
        self.args = args
        self.hand = hand
        self.api = api
        self.failed: str | None = None

    async def run(self, cases: list[Case]) -> None:
        if self.api is not None:
            progress("through the API: flavors, and each host's image cache warmed")
            await self._api(self.api.setup(sorted({case.memory_mb for case in cases})))
        for case in cases:
            await self._case(case)

    async def _case(self, case: Case) -> None:
        load = "dirtying" if case.dirtying else "idle"
        data = user_data(case.memory_mb, load, self.args.dirty_fraction)
        guest = None
        if self.hand is not None:
            progress(f"by hand, {case.label}: booting the guest")
            guest = await self.hand.boot(case.memory_mb, data)
        uuid = None
        if self.api is not None:
            progress(f"through the API, {case.label}: booting the server")
            uuid = await self._api(self.api.boot(case.memory_mb, data))
        await asyncio.sleep(self.args.settle)
        for n in range(self.args.rounds):
            for side in (("hand", "api") if n % 2 == 0 else ("api", "hand")):
                if side == "hand" and guest is not None and self.hand is not None:
                    guest, sample = await self.hand.migrate(guest)
                    case.hand.append(sample)
                    progress(hand_line(case, n, sample))
                elif side == "api" and uuid is not None and self.api is not None:
                    api_sample = await self._api(self.api.migrate(uuid))
                    if api_sample is not None:
                        case.api.append(api_sample)
                        progress(api_line(case, n, api_sample))
        if any(s.downtime_ms is None for s in case.api):
            case.api_note = ("the source compute logged no 'Live migration of <uuid> done "
                             "in <s>s, downtime <ms> ms' line: API downtime unknown")
        if self.hand is not None:
            self.hand.stop_all()
        if self.api is not None:
            await self._api(self.api.cloud.delete_all())

    async def _api(self, work: Awaitable[T]) -> T | None:
        """`work` of the API side; on its failure the API side stops (None)."""
        try:
            return await work
        except Exception as exc:
            traceback.print_exc()
            progress(f"the API side failed ({exc}): the hand-made side goes on alone")
            self.failed, self.api = f"API side failed: {exc}", None
            return None


def both_sides(args: argparse.Namespace, cases: list[Case], work: Path, image: Path,
               dep: LocalDeployment) -> str | None:
    """Both sides interleaved on the started cloud; why the API side failed, if it did."""
    hand = None if args.only == "api" else HandMigrations(work / "hand", image, config.Config())
    api = ApiMigrations(dep)
    sides = Interleaved(args, hand, api)
    try:
        asyncio.run(sides.run(cases))
    finally:
        if hand is not None:
            hand.stop_all()
        try:
            asyncio.run(api.cloud.cleanup())
        except Exception as exc:  # the guests are killed with the cloud anyway
            progress(f"deleting the servers through the API failed: {exc}")
    return sides.failed


def run_both(args: argparse.Namespace, cases: list[Case], work: Path, image: Path
             ) -> str | None:
    """Both sides while the cloud is up (the hand-made side alone when the cloud won't
    start); why the API side failed, if it did."""
    stage = "cloud"
    progress(f"starting the cloud: {WHERE}")
    try:
        with two_qemu_hosts(work / "cloud", image) as dep:
            stage = "sides"
            return both_sides(args, cases, work, image, dep)
    except Exception as exc:
        if stage != "cloud":
            raise  # the hand-made side failed (the API side's failures are caught)
        traceback.print_exc()
        if args.only != "api":
            progress("the cloud did not start: the hand-made side runs alone")
            asyncio.run(run_hand(args, cases, work / "hand", image))
        return f"API side failed: {exc}"


def main() -> int:
    args = parse_args()
    # Ctrl-C and a plain kill both unwind through the cleanups (even when started in
    # the background by a shell, which ignores SIGINT for it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cases = [Case(size, load == "dirtying") for size in args.sizes for load in args.loads]
    image = bench_image()
    work = Path(tempfile.mkdtemp(prefix="novalet-bench-migrate-"))
    load_before = os.getloadavg()[0]
    skipped = "API side not run (--only hand)" if args.only == "hand" else unavailable_reason()
    try:
        if skipped is None:
            skipped = run_both(args, cases, work, image)
        elif args.only != "api":
            asyncio.run(run_hand(args, cases, work / "hand", image))
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    for case in cases:
        case.api_note = "; ".join(note for note in (skipped, case.api_note) if note)
    print(f"novalet bench/migrate.py  ({os.cpu_count()} cores, TCG unless KVM works; "
          f"{args.rounds} round(s), medians; block migration over loopback; load average "
          f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: the "
          "machine's other work)")
    if not skipped:
        print(f"API side: {WHERE}; both sides' rounds taking turns, each side's guest up "
              "while the other's moves")
    print(format_table(cases))
    return 1 if skipped and skipped.startswith("API side failed") else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        progress("interrupted: every QEMU and service this run started is stopped")
        sys.exit(130)
