"""bench/migration_figures.py: the driver's log line, the downtime schedule, the
dirtying guest's script and the side-by-side table of bench/migrate.py."""

from __future__ import annotations

from migration_figures import (DIRTY_MARKER, Case, Sample, dirtying_user_data,
                               downtime_steps, format_table, limit_at, parse_done,
                               table_rows)

UUID = "6f2b1c7e-9d3a-4c51-8e0f-2a4b6c8d0e1f"
OTHER = "11111111-2222-3333-4444-555555555555"


def test_the_driver_line_gives_seconds_and_downtime() -> None:
    log = (f"2026-12-07 12:00:00 INFO novalet.virt.qemu.live [req-1] "
           f"Live migration of {UUID} done in 1.234s, downtime 17 ms\n")
    assert parse_done(log, UUID) == (1.234, 17.0)


def test_the_line_is_read_tolerantly() -> None:
    for line in (f"live migration of {UUID} done in 2 s, downtime 8.5 ms",
                 f"Live-migration of {UUID.upper()} done in 2s,downtime 8.5",
                 f"LIVE MIGRATION OF {UUID} DONE IN   2s ,  downtime 8.5ms"):
        assert parse_done(line, UUID) == (2.0, 8.5), line


def test_only_this_guests_last_line_counts() -> None:
    log = (f"Live migration of {UUID} done in 1.0s, downtime 10 ms\n"
           f"Live migration of {OTHER} done in 9.0s, downtime 99 ms\n"
           f"Live migration of {UUID} done in 2.0s, downtime 20 ms\n")
    assert parse_done(log, UUID) == (2.0, 20.0)


def test_no_line_is_none() -> None:
    assert parse_done(f"Live migration of {UUID} started\n", UUID) is None
    assert parse_done(f"Live migration of {OTHER} done in 1s, downtime 5 ms", UUID) is None
    assert parse_done("", UUID) is None


def test_the_downtime_limit_grows_in_even_steps() -> None:
    schedule = downtime_steps(500, 10, 75, 2.0)
    assert schedule[0] == (0.0, 50)
    assert schedule[1] == (150.0, 95)
    assert schedule[-1] == (1500.0, 500)
    assert len(schedule) == 11
    assert [limit for _, limit in schedule] == sorted(limit for _, limit in schedule)


def test_the_limit_in_force_is_the_last_step_reached() -> None:
    schedule = downtime_steps(500, 10, 75, 2.0)
    assert limit_at(schedule, 0) == 50
    assert limit_at(schedule, 149.9) == 50
    assert limit_at(schedule, 150) == 95
    assert limit_at(schedule, 10_000) == 500


def test_no_steps_means_one_step() -> None:
    assert downtime_steps(300, 0, 75, 1.0) == [(0.0, 300), (75.0, 300)]


def test_the_dirtying_script_rewrites_random_bytes_in_the_background() -> None:
    script = dirtying_user_data(512, 0.25)
    assert script.startswith("#!/bin/sh\n")
    assert "size=129m" in script and "-lt 128 ]" in script  # 128 MiB of 512
    assert "/dev/urandom" in script and "/dev/zero" not in script
    assert "conv=notrunc" in script and "&\n" in script  # in place, in the background
    assert f"echo {DIRTY_MARKER} mib=128 >/dev/ttyS0" in script


def _case(api: list[Sample], note: str = "") -> Case:
    case = Case(128, True, api_note=note)
    case.hand = [Sample(1.0, 20.0, 0.4, 4, 150.0), Sample(1.2, 30.0, 0.5, 5, 170.0),
                 Sample(5.0, 90.0, 0.9, 6, 190.0)]
    case.api = api
    return case


def test_rows_show_medians_and_the_difference_against_the_targets() -> None:
    api = [Sample(1.5, 60.0, driver_s=0.9), Sample(1.6, 70.0, driver_s=1.0),
           Sample(1.7, 200.0, driver_s=1.1)]
    (row,) = table_rows([_case(api)])
    assert row == ("128 MiB dirtying", "1.20", "0.50", "30", "5", "170", "1.60", "1.00",
                   "70", "+0.40 ok", "+40 ok")


def test_a_missed_target_says_so() -> None:
    (row,) = table_rows([_case([Sample(2.0, 100.0)])])
    assert row[-2:] == ("+0.80 MISSED", "+70 MISSED")


def test_an_unknown_api_downtime_is_na() -> None:
    (row,) = table_rows([_case([Sample(1.3, None)])])
    assert row[6:] == ("1.30", "n/a", "n/a", "+0.10 ok", "n/a")


def test_without_the_api_side_its_columns_are_na_and_the_reason_is_printed() -> None:
    reason = "API side not run: the QEMU driver has no live migration on this tree"
    table = format_table([_case([], reason), Case(512, False, api_note=reason)])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["guest", "hand", "total"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].startswith("128 MiB dirtying") and lines[2].split()[-5:] == ["n/a"] * 5
    assert lines[3].startswith("512 MiB idle")
    assert lines[-1] == f"note: {reason}"
    assert len({len(line) for line in lines[:4]}) == 1  # aligned columns
