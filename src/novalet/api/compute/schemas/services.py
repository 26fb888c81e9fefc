"""JSON schemas of os-services requests, by microversion."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from novalet.api.validation import BOOLEAN

_HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9-._]*$"}
_BINARY = {"type": "string", "minLength": 1, "maxLength": 255}
_REASON = {"type": "string", "minLength": 1, "maxLength": 255}

# 2.1-2.52: PUT /os-services/{enable,disable,disable-log-reason} name the service.
UPDATE_21: dict[str, Any] = {
    "type": "object",
    "properties": {"host": _HOST, "binary": _BINARY, "disabled_reason": _REASON},
    "required": ["host", "binary"],
    "additionalProperties": False,
}

# 2.11-2.52: PUT /os-services/force-down too.
UPDATE_211 = copy.deepcopy(UPDATE_21)
UPDATE_211["properties"]["forced_down"] = BOOLEAN

# 2.53: PUT /os-services/{uuid}; which fields go together is checked by the service API.
UPDATE_253: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["enabled", "disabled"]},
                   "disabled_reason": _REASON, "forced_down": BOOLEAN},
    "additionalProperties": False,
}

# Query values arrive as strings; other parameters are ignored, as in Nova.
INDEX_QUERY: dict[str, Any] = {
    "type": "object",
    "properties": {"host": {"type": "string"}, "binary": {"type": "string"}},
    "additionalProperties": True,
}


def update(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """2.1: host and binary (and a reason); 2.11: forced_down; 2.53: by uuid."""
    if at_least("2.53"):
        return UPDATE_253
    return UPDATE_211 if at_least("2.11") else UPDATE_21
