"""The server group a build or move is scheduled into, as RequestSpec carries it.

A part of RequestSpec (rpc/models.py's rules): before RequestSpec 1.2 it was a
plain dict of exactly these keys, so the wire form is unchanged and a spec kept on
an instance row before then (or sent by the previous release) reads as this part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from novalet.rpc.models import BusModel

# Anti-affinity's default: one member per host (a group dict without the key
# always read as 1).
DEFAULT_MAX_SERVER_PER_HOST = 1


@dataclass
class SchedulingGroup(BusModel):
    """What the scheduler's group filters and weighers read of the `group` hint's
    server group."""

    VERSION: ClassVar[str] = "1.0"
    uuid: str
    policy: str  # affinity, anti-affinity, soft-affinity, soft-anti-affinity
    max_server_per_host: int = DEFAULT_MAX_SERVER_PER_HOST  # anti-affinity's rule
