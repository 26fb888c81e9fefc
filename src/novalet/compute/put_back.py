"""Putting an instance back after an action that did not get through.

The write lands only while the task_state is still the action's: a delete, or
another action that came meanwhile, wins, and then there is nothing of ours to
put back. The one helper for the API side (createImage, shelve, password...)
and the conductor's tasks alike.
"""

from __future__ import annotations

import logging
from typing import Any

from novalet import exceptions
from novalet.db import instances
from novalet.db.engine import Database

LOG = logging.getLogger(__name__)

IDLE: dict[str, Any] = {"task_state": None}
"""The usual values: just clear the task_state."""


async def put_back(db: Database, uuid: str, values: dict[str, Any],
                   expected: list[str | None]) -> bool:
    """Write `values` if the task_state is still one of `expected`; False when the
    instance was deleted or changed meanwhile (then it is not ours to put back)."""
    try:
        await instances.set_fields(db, uuid, values, expected_task_state=expected)
    except (exceptions.NotFound, exceptions.Conflict) as exc:
        LOG.info("Not putting %s back: %s", uuid, exc)
        return False
    return True
