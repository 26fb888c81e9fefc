"""Usage hours: what part of a period an instance was up."""

from __future__ import annotations

import datetime as dt

import pytest

from novalet.compute.usage import hours_for

T0 = dt.datetime(2026, 1, 1)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


@pytest.mark.parametrize(("launched", "terminated", "expected"), [
    (None, None, 0.0),             # never launched
    (h(-5), None, 10.0),           # up all period
    (h(2), None, 8.0),             # launched inside
    (h(2), h(5), 3.0),             # launched and terminated inside
    (h(-5), h(4), 4.0),            # terminated inside
    (h(-5), h(-1), 0.0),           # gone before the period
    (h(11), None, 0.0),            # launched after the period
])
def test_hours_for(launched: dt.datetime | None, terminated: dt.datetime | None,
                   expected: float) -> None:
    assert hours_for(launched, terminated, T0, h(10)) == pytest.approx(expected)
