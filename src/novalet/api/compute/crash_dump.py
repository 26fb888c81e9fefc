"""Server action trigger_crash_dump (2.17): an NMI into the guest."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply, VersionNotFound
from novalet.api.validation import validate
from novalet.policy import enforce

FIRST = "2.17"
TRIGGER_CRASH_DUMP: dict[str, Any] = {"type": "null"}


async def trigger_crash_dump(req: ApiRequest, value: Any) -> Reply:
    if not req.at_least(FIRST):  # an action Nova does not know below 2.17
        raise VersionNotFound()
    validate(value, TRIGGER_CRASH_DUMP)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:servers:trigger_crash_dump", instance.project_id,
            {"user_id": instance.user_id})
    await req.app.compute.trigger_crash_dump(req.ctx, instance.uuid)
    return Reply(None, 202)


ACTIONS = {"trigger_crash_dump": TRIGGER_CRASH_DUMP}
HANDLERS = {"trigger_crash_dump": trigger_crash_dump}
