"""Unpinning and re-pinning a server's availability zone (PUT /servers, 2.104).

A server created in a named zone is pinned to it: every later move is scheduled
within it. Setting the pin to null frees the server to move anywhere; setting it
again is allowed only to the zone the server is in now, and a pinned server
must be unpinned before it is pinned elsewhere (as Nova rules it).
"""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.db.models import Instance


class PinnedZoneChange(exceptions.Conflict):
    msg_fmt = ("Cannot change pinned availability zone directly. Unpin first by setting "
               "pinned_availability_zone to null.")


class PinOutsideCurrentZone(exceptions.Conflict):
    msg_fmt = ("Server can only be pinned to its current availability zone "
               "'%(current)s', but '%(requested)s' was requested.")


def pin_changes(instance: Instance, requested: str | None) -> dict[str, Any]:
    """The instance columns that pin the server to `requested` (None: unpin); {}
    when nothing changes; PinnedZoneChange or PinOutsideCurrentZone (409) when the
    change is not allowed."""
    pinned = instance.requested_availability_zone
    if requested == pinned:
        return {}
    if requested is not None and pinned is not None:
        raise PinnedZoneChange()
    if requested is not None and requested != instance.availability_zone:
        raise PinOutsideCurrentZone(current=instance.availability_zone or "",
                                    requested=requested)
    changes: dict[str, Any] = {"requested_availability_zone": requested}
    if instance.request_spec is not None:  # what a re-driven build schedules from
        changes["request_spec"] = {**instance.request_spec, "availability_zone": requested}
    return changes
