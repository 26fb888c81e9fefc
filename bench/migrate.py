#!/usr/bin/env python3
"""Live migration benchmark: total time and downtime through the API beside the same
migration done by hand over QMP.

For each guest size (--sizes) and load (idle, or dirtying: user data that keeps
rewriting --dirty-fraction of its RAM with random bytes from a tmpfs file),
--rounds migrations back and forth between two hosts that share no storage
(block migration), done two ways in one run:

- by hand: two qemu-system-x86_64 processes of the test image with the QEMU
  driver's own command line (while the API side's cloud is up and idle, when
  that side runs: both sides share the same background load); "hand total" runs from the start of the
  destination's preparation (config drive copied, empty overlay, QEMU started
  with -incoming defer, NBD export, drive-mirror until ready) to the
  destination running after `cont`; "hand mem" only from QMP `migrate` on.
  Downtime is QEMU's `downtime` (query-migrate on the source). "iters" is
  QEMU's dirty-sync-count, "sent MiB" the guest memory it sent: above the
  guest's size (or more iterations than idle) shows the dirtying is seen.
- through the API: a server booted on host bench-a of a multi-process cloud
  (see bench/api_migration.py), `os-migrateLive` to the other host with
  block_migration auto; "API total" runs from the POST to the migration
  `completed` and the server ACTIVE on the other host; "API drv" and "API
  down" are what the source compute's driver logged ("Live migration of <uuid>
  done in <s>s, downtime <ms> ms"): its own span, and QEMU's downtime.

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
from pathlib import Path

from api_migration import WHERE, ApiMigrations, two_qemu_hosts, unavailable_reason
from migration_figures import Case, dirtying_user_data, format_table
from qmp_migration import HandMigrations
from realcloud import bench_image

from novalet import config
from novalet.service.local_deployment import LocalDeployment

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
                progress(f"by hand, {case.label}, round {n + 1}: {sample.total_s:.2f} s "
                         f"(memory pass {sample.memory_pass_s or 0:.2f} s), "
                         f"downtime {sample.downtime_ms:.0f} ms, {sample.iterations} "
                         f"iterations, {sample.sent_mib or 0:.0f} MiB sent")
            hand.stop_all()
    finally:
        hand.stop_all()


async def run_api(args: argparse.Namespace, cases: list[Case], api: ApiMigrations) -> None:
    progress("through the API: flavors, and each host's image cache warmed")
    await api.setup(sorted({case.memory_mb for case in cases}))
    for case in cases:
        load = "dirtying" if case.dirtying else "idle"
        progress(f"through the API, {case.label}: booting the server")
        uuid = await api.boot(case.memory_mb,
                              user_data(case.memory_mb, load, args.dirty_fraction))
        await asyncio.sleep(args.settle)
        for n in range(args.rounds):
            sample = await api.migrate(uuid)
            case.api.append(sample)
            downtime = ("not logged" if sample.downtime_ms is None
                        else f"{sample.downtime_ms:.0f} ms")
            driver = "" if sample.driver_s is None else f" (driver {sample.driver_s:.2f} s)"
            progress(f"through the API, {case.label}, round {n + 1}: "
                     f"{sample.total_s:.2f} s{driver}, downtime {downtime}")
        if any(s.downtime_ms is None for s in case.api):
            case.api_note = ("the source compute logged no 'Live migration of <uuid> done "
                             "in <s>s, downtime <ms> ms' line: API downtime unknown")
        await api.cloud.delete_all()


def api_side(args: argparse.Namespace, cases: list[Case], dep: LocalDeployment) -> None:
    api = ApiMigrations(dep)
    try:
        asyncio.run(run_api(args, cases, api))
    finally:
        try:
            asyncio.run(api.cloud.cleanup())
        except Exception as exc:  # the guests are killed with the cloud anyway
            progress(f"deleting the servers through the API failed: {exc}")


def run_both(args: argparse.Namespace, cases: list[Case], work: Path, image: Path
             ) -> str | None:
    """The hand-made side while the cloud is up and idle (the same background load as
    the API side has), then the API side; why the API side failed, if it did."""
    stage = "cloud"
    progress(f"starting the cloud: {WHERE}")
    try:
        with two_qemu_hosts(work / "cloud", image) as dep:
            stage = "hand"
            if args.only != "api":
                asyncio.run(run_hand(args, cases, work / "hand", image))
            stage = "api"
            api_side(args, cases, dep)
    except Exception as exc:
        if stage == "hand":
            raise
        traceback.print_exc()
        if stage == "cloud" and args.only != "api":
            progress("the cloud did not start: the hand-made side runs alone")
            asyncio.run(run_hand(args, cases, work / "hand", image))
        return f"API side failed: {exc}"
    return None


def main() -> int:
    args = parse_args()
    # Ctrl-C and a plain kill both unwind through the cleanups (even when started in
    # the background by a shell, which ignores SIGINT for it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cases = [Case(size, load == "dirtying") for size in args.sizes for load in args.loads]
    image = bench_image()
    work = Path(tempfile.mkdtemp(prefix="novalet-bench-migrate-"))
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
          f"{args.rounds} round(s), medians; block migration over loopback)")
    if not skipped:
        print(f"API side: {WHERE}; the hand-made side ran while it was up and idle")
    print(format_table(cases))
    return 1 if skipped and skipped.startswith("API side failed") else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        progress("interrupted: every QEMU and service this run started is stopped")
        sys.exit(130)
