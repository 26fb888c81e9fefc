"""The last whole audit period before a moment."""

from __future__ import annotations

import datetime as dt

import pytest

from novalet.compute.audit_period import InvalidAuditPeriod, last_completed

NOW = dt.datetime(2026, 1, 15, 10, 30, 5)


@pytest.mark.parametrize(("unit", "begin", "end"), [
    ("hour", dt.datetime(2026, 1, 15, 9), dt.datetime(2026, 1, 15, 10)),
    ("day", dt.datetime(2026, 1, 14), dt.datetime(2026, 1, 15)),
    ("month", dt.datetime(2025, 12, 1), dt.datetime(2026, 1, 1)),
    ("year", dt.datetime(2025, 1, 1), dt.datetime(2026, 1, 1)),
])
def test_last_completed(unit: str, begin: dt.datetime, end: dt.datetime) -> None:
    assert last_completed(unit, NOW) == (begin, end)


def test_month_in_march() -> None:
    assert last_completed("month", dt.datetime(2026, 3, 1)) == (
        dt.datetime(2026, 2, 1), dt.datetime(2026, 3, 1))


def test_unknown_unit() -> None:
    with pytest.raises(InvalidAuditPeriod):
        last_completed("fortnight", NOW)
