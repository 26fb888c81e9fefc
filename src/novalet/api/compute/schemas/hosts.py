"""JSON schemas of os-hosts requests (the API ends at 2.42)."""

from __future__ import annotations

from typing import Any

_SWITCH = {"type": "string",
           "enum": ["enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"]}

# PUT /os-hosts/{host}: the fields sit at the top of the body, unwrapped.
UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {"status": _SWITCH, "maintenance_mode": _SWITCH},
    "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
    "additionalProperties": False,
}

# Other parameters are ignored, as Nova ignores them on this deprecated API.
INDEX_QUERY: dict[str, Any] = {
    "type": "object", "properties": {"zone": {"type": "string"}},
    "additionalProperties": True,
}
