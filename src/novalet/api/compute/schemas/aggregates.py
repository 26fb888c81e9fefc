"""JSON schemas of os-aggregates requests (the same at every microversion)."""

from __future__ import annotations

from typing import Any

from novalet.api.validation import METADATA_KEY, NAME, NAME_WITH_SPACES

# Zone names can't hold ':' (availability_zone=zone:host:node names a host in a zone).
AZ_NAME = {"type": "string", "format": "az_name", "minLength": 1, "maxLength": 255}
_HOST = {"type": "string", "minLength": 1, "maxLength": 255,
         "pattern": r"^[a-zA-Z0-9-._]*$"}


def _wrapped(key: str, inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: inner}, "required": [key],
            "additionalProperties": False}


CREATE = _wrapped("aggregate", {
    "type": "object",
    "properties": {"name": NAME, "availability_zone": {"anyOf": [AZ_NAME, {"type": "null"}]}},
    "required": ["name"], "additionalProperties": False})

# Nova lets a rename keep leading and trailing spaces (not a create).
UPDATE = _wrapped("aggregate", {
    "type": "object",
    "properties": {"name": NAME_WITH_SPACES, "availability_zone": {"anyOf": [AZ_NAME, {"type": "null"}]}},
    "minProperties": 1, "additionalProperties": False})

# POST /os-aggregates/{id}/action: the value of each action key.
HOST_ACTION = {"type": "object", "properties": {"host": _HOST}, "required": ["host"],
               "additionalProperties": False}

SET_METADATA = {
    "type": "object",
    "properties": {"metadata": {
        "type": "object",
        "patternProperties": {METADATA_KEY: {
            "anyOf": [{"type": "string", "maxLength": 255}, {"type": "null"}]}},
        "additionalProperties": False}},
    "required": ["metadata"], "additionalProperties": False}
