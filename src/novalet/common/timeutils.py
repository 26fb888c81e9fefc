"""Time formats the OpenStack APIs use."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def isotime(value: dt.datetime | None) -> str | None:
    """'2026-11-21T09:30:00Z' (Nova's format for created/updated)."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def isotime_micro(value: dt.datetime | None) -> str | None:
    """'2026-11-21T09:30:00.000000' (Nova's format for launched_at and actions)."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_isotime(value: str) -> dt.datetime:
    """A naive UTC datetime from an ISO 8601 string; ValueError when it is not one."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            raise ValueError(f"{value} is out of range") from None
    return parsed
