"""The server actions that move a server to another host: `migrate` (cold) and
`os-migrateLive`, with their schemas per microversion (admin actions by default)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import BOOLEAN, Spec, to_bool, validate
from novalet.policy import enforce

MIGRATE_HOST = "2.56"  # migrate takes a target host
BLOCK_AUTO = "2.25"  # block_migration "auto"; disk_over_commit gone
FORCE = "2.30"  # force (skip the scheduler) from here ...
FORCE_GONE = "2.68"  # ... to here
ASYNC_LIVE = "2.34"  # no valid host shows in the migration, not in the answer

_HOST = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
_MIGRATE_256 = {"type": ["object", "null"], "properties": {"host": _HOST},
                "additionalProperties": False}


def _live(block: dict[str, Any], extra: dict[str, Any] | None = None,
          required: tuple[str, ...] = ("block_migration", "host")) -> dict[str, Any]:
    return {"type": "object", "properties": {"host": _HOST, "block_migration": block,
                                             **(extra or {})},
            "required": list(required), "additionalProperties": False}


_BLOCK_AUTO = {"oneOf": [BOOLEAN, {"type": "string", "enum": ["auto"]}]}
LIVE: list[tuple[str, dict[str, Any]]] = [
    ("2.1", _live(BOOLEAN, {"disk_over_commit": BOOLEAN},
                  ("block_migration", "disk_over_commit", "host"))),
    (BLOCK_AUTO, _live(_BLOCK_AUTO)),
    (FORCE, _live(_BLOCK_AUTO, {"force": BOOLEAN})),
    (FORCE_GONE, _live(_BLOCK_AUTO)),
]
ACTIONS: dict[str, Spec] = {
    "migrate": [("2.1", {}), (MIGRATE_HOST, _MIGRATE_256)],
    "os-migrateLive": LIVE,
}


async def _admin_instance(req: ApiRequest, policy: str) -> Any:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, policy, instance.project_id)
    return instance


async def migrate(req: ApiRequest, value: Any) -> Reply:
    """Cold migration (to `host` from 2.56); the server ends in VERIFY_RESIZE."""
    host = None
    if req.at_least(MIGRATE_HOST):
        validate(value, _MIGRATE_256)
        host = (value or {}).get("host")
    instance = await _admin_instance(req, "os_compute_api:os-migrate-server:migrate")
    if host is not None:
        enforce(req.ctx, "os_compute_api:os-migrate-server:migrate:host",
                instance.project_id)
    await req.app.compute.moves.migrate(req.ctx, instance.uuid, host)
    return Reply(None, 202)


async def migrate_live(req: ApiRequest, value: Any) -> Reply:
    schema = LIVE[0][1]
    for first, candidate in LIVE:
        if req.at_least(first):
            schema = candidate
    validate(value, schema)
    instance = await _admin_instance(req, "os_compute_api:os-migrate-server:migrate_live")
    block = value["block_migration"]
    force = req.at_least(FORCE) and not req.at_least(FORCE_GONE) and \
        to_bool(value.get("force", False))
    await req.app.compute.moves.live_migrate(
        req.ctx, instance.uuid, value.get("host"),
        None if block == "auto" else to_bool(block), force,
        asynchronous=req.at_least(ASYNC_LIVE))
    return Reply(None, 202)
