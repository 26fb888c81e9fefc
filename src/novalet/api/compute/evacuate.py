"""The evacuate server action (admin): recreate a server of a failed host elsewhere."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.servers import generate_password
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import (BOOLEAN, Spec, ValidationError, resolve, to_bool,
                                    validate)
from novalet.compute import evacuation
from novalet.policy import enforce

_HOST = {"type": "string", "minLength": 1, "maxLength": 255,
         "pattern": r"^[a-zA-Z0-9\-._]*$"}
_PASSWORD = {"type": "string"}
_BASE = {"host": _HOST, "adminPass": _PASSWORD}


def _schema(**extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {**_BASE, **extra},
            "additionalProperties": False}


_EVACUATE_21 = {**_schema(onSharedStorage=BOOLEAN), "required": ["onSharedStorage"]}
_EVACUATE_214 = _schema()
_EVACUATE_229 = _schema(force=BOOLEAN)

# action key -> what it takes, for server_actions' table. 2.95 changes no schema:
# an evacuated server ends stopped from then on.
ACTIONS: dict[str, Spec] = {"evacuate": [
    ("2.1", _EVACUATE_21), ("2.14", _EVACUATE_214), ("2.29", _EVACUATE_229),
    ("2.68", _EVACUATE_214)]}


async def evacuate(req: ApiRequest, value: Any) -> Reply:
    """200 (Nova keeps the status of its first release); adminPass in the body
    below 2.14 only."""
    schema = resolve(ACTIONS["evacuate"], req.at_least)
    assert schema is not None
    validate(value, schema)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-evacuate", instance.project_id)
    host = value.get("host")
    force = False
    if req.at_least("2.29") and not req.at_least("2.68"):
        force = to_bool(value.get("force", False))
        if force and not host:
            raise ValidationError(reason="Can't force to a non-provided destination")
    elif not req.at_least("2.29"):
        force = host is not None  # before 2.29 a named host skipped the scheduler
    password = value.get("adminPass")
    if not req.at_least("2.14"):
        if to_bool(value["onSharedStorage"]):
            if password is not None:
                raise ValidationError(reason="admin password can't be changed on "
                                      "existing disk")
        elif password is None:
            password = generate_password()
    await evacuation.evacuate(req.app.compute, req.ctx, instance.uuid, host, force=force,
                              stop=req.at_least("2.95"))
    if not req.at_least("2.14"):
        return Reply({"adminPass": password}, 200)
    return Reply(None, 200)


ACTION_HANDLERS = {"evacuate": evacuate}
