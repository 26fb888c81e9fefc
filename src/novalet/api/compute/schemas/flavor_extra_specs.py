"""JSON schemas of flavor extra spec requests."""

from __future__ import annotations

from typing import Any

KEY_PATTERN = r"^[a-zA-Z0-9-_:. ]{1,255}$"
_SPECS: dict[str, Any] = {
    "type": "object",
    "patternProperties": {KEY_PATTERN: {"type": ["string", "number"], "maxLength": 255}},
    "additionalProperties": False,
}

CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {"extra_specs": _SPECS},
    "required": ["extra_specs"],
    "additionalProperties": False,
}

# PUT /os-extra_specs/{key} carries exactly that one key.
UPDATE: dict[str, Any] = {**_SPECS, "minProperties": 1, "maxProperties": 1}
