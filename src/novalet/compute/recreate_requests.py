"""What the API casts to the conductor for the moves that recreate a guest from an
image on a host the scheduler picks: unshelve and evacuate (conductor/tasks/).

Bus models (rpc/models.py rules; fingerprinted in tests/unit/rpc/test_models.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from novalet.rpc.models import BusModel


@dataclass
class UnshelveRequest(BusModel):
    """Unshelve `instance_uuid` (task_state unshelving). From SHELVED_OFFLOADED it is
    scheduled in `availability_zone` (None: any zone), on `host` if given (the 2.91
    admin target; the scheduler's filters still check it)."""

    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    availability_zone: str | None = None
    host: str | None = None


@dataclass
class EvacuateRequest(BusModel):
    """Evacuate `instance_uuid` (task_state rebuilding) off its failed host.

    `host`: the requested destination (None: the scheduler picks one); `force`:
    below 2.68 an admin may skip the scheduler's filters for that host (it is still
    claimed on); `stopped`: the guest ends powered off (2.95, or it was stopped);
    `migration_uuid`: the evacuation's migration record, made by the API."""

    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    migration_uuid: str
    host: str | None = None
    force: bool = False
    stopped: bool = False
