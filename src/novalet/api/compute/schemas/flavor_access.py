"""JSON schemas of the flavor access actions (addTenantAccess, removeTenantAccess)."""

from __future__ import annotations

from typing import Any

_TENANT = {"type": "string", "minLength": 1, "maxLength": 255}


def _action(name: str) -> dict[str, Any]:
    return {"type": "object",
            "properties": {name: {"type": "object", "properties": {"tenant": _TENANT},
                                  "required": ["tenant"], "additionalProperties": False}},
            "required": [name], "additionalProperties": False}


ADD_TENANT_ACCESS = _action("addTenantAccess")
REMOVE_TENANT_ACCESS = _action("removeTenantAccess")
