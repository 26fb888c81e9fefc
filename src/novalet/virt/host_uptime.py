"""This machine's `uptime` line (time, time up, users, load averages), read from /proc
and utmp rather than by running uptime(1): os-hypervisors shows it as a string."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

UTMP = Path("/run/utmp")
_UTMP_RECORD = 384  # sizeof(struct utmp) on Linux (glibc, 64-bit and 32-bit alike)
_USER_PROCESS = 7


def format_uptime(now: dt.datetime, up_seconds: float, users: int,
                  load: tuple[float, float, float]) -> str:
    """' 08:32:11 up 93 days, 18:25,  1 user,  load average: 0.20, 0.12, 0.14'."""
    minutes = int(up_seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    up = f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
    if days:
        up = f"{days} day{'s' if days != 1 else ''}, {up}"
    who = f"{users} user{'s' if users != 1 else ''}"
    loads = ", ".join(f"{v:.2f}" for v in load)
    return f" {now:%H:%M:%S} up {up},  {who},  load average: {loads}"


def logged_in_users(utmp: Path = UTMP) -> int:
    """Login sessions in utmp, as uptime(1) counts them (0 when unreadable)."""
    try:
        data = utmp.read_bytes()
    except OSError:
        return 0
    count = 0
    for offset in range(0, len(data) - _UTMP_RECORD + 1, _UTMP_RECORD):
        (kind,) = struct.unpack_from("<h", data, offset)
        if kind == _USER_PROCESS:
            count += 1
    return count


def host_uptime(proc: Path = Path("/proc")) -> str:
    """The uptime line of the machine this runs on."""
    up_seconds = float((proc / "uptime").read_text().split()[0])
    fields = (proc / "loadavg").read_text().split()
    load = (float(fields[0]), float(fields[1]), float(fields[2]))
    return format_uptime(dt.datetime.now(), up_seconds, logged_in_users(), load)
