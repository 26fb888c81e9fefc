"""Pure parts of bench/migrate.py: the guest's memory-dirtying user data, the
downtime-limit schedule, the driver's log line, and the side-by-side table."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

TOTAL_TARGET_S = 0.5
DOWNTIME_TARGET_MS = 50.0
DIRTY_MARKER = "NOVALET-DIRTYING"

# What the QEMU driver logs at INFO on the source when a live migration ends:
#   Live migration of <uuid> done in <seconds>s, downtime <ms> ms
# Read tolerantly (case, spacing, an optional "s"/"ms" unit, decimals).
_DONE = re.compile(
    r"live[ -]migration of (?P<uuid>[0-9a-f-]{32,36}) done in\s+(?P<seconds>\d+(?:\.\d+)?)"
    r"\s*s?\s*,\s*downtime\s+(?P<ms>\d+(?:\.\d+)?)\s*(?:ms)?", re.IGNORECASE)


def parse_done(log: str, uuid: str) -> tuple[float, float] | None:
    """(seconds, downtime ms) of the last 'Live migration of <uuid> done' line in `log`,
    or None when the driver logged none for this guest."""
    found = None
    for match in _DONE.finditer(log):
        if match.group("uuid").lower() == uuid.lower():
            found = (float(match.group("seconds")), float(match.group("ms")))
    return found


def downtime_steps(max_ms: int, steps: int, delay_s_per_gib: int, data_gib: float
                   ) -> list[tuple[float, int]]:
    """(seconds after the start, allowed downtime ms): the limit starts at
    max_ms / steps and grows evenly to max_ms in `steps` steps, one every
    delay_s_per_gib seconds per GiB of data to copy (the [qemu]
    live_migration_downtime* options, read as Nova reads its [libvirt] ones)."""
    steps = max(steps, 1)
    base = max_ms / steps
    increment = (max_ms - base) / steps
    delay = delay_s_per_gib * data_gib
    return [(delay * i, int(base + increment * i)) for i in range(steps + 1)]


def limit_at(schedule: list[tuple[float, int]], elapsed: float) -> int:
    """The downtime limit the schedule allows `elapsed` seconds in."""
    current = schedule[0][1]
    for after, limit in schedule:
        if elapsed >= after:
            current = limit
    return current


def dirtying_user_data(memory_mb: int, fraction: float) -> str:
    """A user-data script that fills `fraction` of the guest's RAM with random bytes
    in a tmpfs file, then keeps rewriting that file in place in the background
    (non-zero pages, so QEMU's zero-page detection can't skip them), and says so
    on the serial console before the agent's ready line."""
    mib = max(int(memory_mb * fraction), 1)
    return (
        "#!/bin/sh\n"
        "d=/run/dirty\n"
        f"mkdir -p $d && mount -t tmpfs -o size={mib + 1}m tmpfs $d\n"
        "dd if=/dev/urandom of=$d/seed bs=1M count=1 2>/dev/null\n"
        f"i=0; while [ $i -lt {mib} ]; do\n"
        "  dd if=$d/seed of=$d/buf bs=1M seek=$i conv=notrunc 2>/dev/null; i=$((i + 1))\n"
        "done\nrm $d/seed\n"
        "(while :; do dd if=$d/buf of=$d/buf bs=1M conv=notrunc 2>/dev/null; done)"
        " </dev/null >/dev/null 2>&1 &\n"
        f"echo {DIRTY_MARKER} mib={mib} >/dev/ttyS0\n")


@dataclass
class Sample:
    """One live migration: what it took and what QEMU said about it."""

    total_s: float  # the whole move (see bench/migrate.py's description of each side)
    downtime_ms: float | None  # None: not known (the driver logged no downtime)
    memory_pass_s: float | None = None  # QMP migrate to the destination running
    iterations: int | None = None  # QEMU's dirty-sync-count
    sent_mib: float | None = None  # guest memory QEMU sent, re-sent dirty pages included
    driver_s: float | None = None  # the span the source's driver logged (API side)


@dataclass
class Case:
    """One guest size and load, by hand and through the API."""

    memory_mb: int
    dirtying: bool
    hand: list[Sample] = field(default_factory=list)
    api: list[Sample] = field(default_factory=list)
    api_note: str = ""  # why the API columns are empty, when they are

    @property
    def label(self) -> str:
        return f"{self.memory_mb} MiB {'dirtying' if self.dirtying else 'idle'}"


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _diff(api: float | None, hand: float | None, target: float, fmt: str) -> str:
    if api is None or hand is None:
        return "n/a"
    delta = api - hand
    return f"{delta:{fmt}} {'ok' if abs(delta) <= target else 'MISSED'}"


HEADER = ("guest", "hand total s", "hand mem s", "hand down ms", "iters", "sent MiB",
          "API total s", "API drv s", "API down ms", "Δ total s", "Δ down ms")


def table_rows(cases: list[Case]) -> list[tuple[str, ...]]:
    """One row per case: medians over its rounds, and API minus hand."""
    rows: list[tuple[str, ...]] = []
    for case in cases:
        hand_total = _median([s.total_s for s in case.hand])
        hand_down = _median([s.downtime_ms for s in case.hand])
        api_total = _median([s.total_s for s in case.api])
        api_down = _median([s.downtime_ms for s in case.api])
        rows.append((
            case.label, _num(hand_total, ".2f"),
            _num(_median([s.memory_pass_s for s in case.hand]), ".2f"),
            _num(hand_down, ".0f"),
            _num(_median([float(s.iterations) if s.iterations is not None else None
                          for s in case.hand]), ".0f"),
            _num(_median([s.sent_mib for s in case.hand]), ".0f"),
            _num(api_total, ".2f"), _num(_median([s.driver_s for s in case.api]), ".2f"),
            _num(api_down, ".0f"),
            _diff(api_total, hand_total, TOTAL_TARGET_S, "+.2f"),
            _diff(api_down, hand_down, DOWNTIME_TARGET_MS, "+.0f")))
    return rows


def format_table(cases: list[Case]) -> str:
    """The side-by-side table, columns aligned, then the notes of cases that have one."""
    rows = [HEADER, *table_rows(cases)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = sorted({case.api_note for case in cases if case.api_note})
    return "\n".join(lines + [f"note: {note}" for note in notes])
