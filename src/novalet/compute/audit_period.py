"""Audit periods (Nova's instance_usage_audit_period): the last whole hour, day, month
or year before a moment, as [begin, end)."""

from __future__ import annotations

import datetime as dt

UNITS = ("hour", "day", "month", "year")


class InvalidAuditPeriod(ValueError):
    pass


def last_completed(unit: str, before: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last `unit` that ended at or before `before` (naive UTC)."""
    if unit == "hour":
        end = before.replace(minute=0, second=0, microsecond=0)
        return end - dt.timedelta(hours=1), end
    if unit == "day":
        end = before.replace(hour=0, minute=0, second=0, microsecond=0)
        return end - dt.timedelta(days=1), end
    if unit == "month":
        end = before.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        begin = (end.replace(year=end.year - 1, month=12) if end.month == 1
                 else end.replace(month=end.month - 1))
        return begin, end
    if unit == "year":
        end = before.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        return end.replace(year=end.year - 1), end
    raise InvalidAuditPeriod(f"instance_usage_audit_period {unit!r} is not one of "
                             f"{', '.join(UNITS)}")
