"""The uptime line os-hypervisors shows, built from /proc and utmp."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

from novalet.virt import host_uptime


def test_format_like_uptime() -> None:
    now = dt.datetime(2026, 11, 21, 8, 32, 11)
    line = host_uptime.format_uptime(now, 93 * 86400 + 18 * 3600 + 25 * 60 + 7, 12,
                                     (0.2, 0.12, 0.14))
    assert line == " 08:32:11 up 93 days, 18:25,  12 users,  load average: 0.20, 0.12, 0.14"
    assert host_uptime.format_uptime(now, 300, 1, (0, 0, 0)) == (
        " 08:32:11 up 5 min,  1 user,  load average: 0.00, 0.00, 0.00")
    assert "up 1 day,  2:03," in host_uptime.format_uptime(now, 86400 + 7380, 0, (0, 0, 0))


def test_users_counted_from_utmp(tmp_path: Path) -> None:
    utmp = tmp_path / "utmp"
    records = [struct.pack("<h", kind).ljust(384, b"\0") for kind in (2, 7, 7, 8)]
    utmp.write_bytes(b"".join(records))
    assert host_uptime.logged_in_users(utmp) == 2
    assert host_uptime.logged_in_users(tmp_path / "missing") == 0


def test_host_uptime_reads_proc(tmp_path: Path) -> None:
    (tmp_path / "uptime").write_text("7200.50 100.00\n")
    (tmp_path / "loadavg").write_text("1.00 0.50 0.25 1/100 4242\n")
    line = host_uptime.host_uptime(tmp_path)
    assert " up  2:00," in line and line.endswith("load average: 1.00, 0.50, 0.25")
