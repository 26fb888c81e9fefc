"""JSON schemas of the os-fixed-ips actions."""

from __future__ import annotations

from typing import Any


def _action(name: str) -> dict[str, Any]:
    """{"reserve": null} or {"unreserve": null}."""
    return {"type": "object", "properties": {name: {"type": "null"}},
            "required": [name], "additionalProperties": False}


RESERVE = _action("reserve")
UNRESERVE = _action("unreserve")

# POST /os-fixed-ips/{address}/action: one key names the action.
ACTIONS: dict[str, dict[str, Any]] = {"reserve": {"type": "null"}, "unreserve": {"type": "null"}}
