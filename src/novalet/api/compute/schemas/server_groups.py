"""JSON schemas of server group requests and list queries, by microversion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from novalet.api.validation import NAME, UUID
from novalet.compute.server_groups import HARD_POLICIES, SOFT_POLICIES

_HARD = list(HARD_POLICIES)
_ALL = [*HARD_POLICIES, *SOFT_POLICIES]
# An integer, or digits in a string, of at least 1.
_POSITIVE_INT = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1,
                 "minLength": 1}


def _group(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object",
            "properties": {"server_group": {"type": "object", "properties": properties,
                                            "required": required,
                                            "additionalProperties": False}},
            "required": ["server_group"], "additionalProperties": False}


def _policies(names: list[str]) -> dict[str, Any]:
    return {"type": "array", "prefixItems": [{"type": "string", "enum": names}],
            "items": False, "uniqueItems": True, "minItems": 1, "maxItems": 1}


CREATE_21 = _group({"name": NAME, "policies": _policies(_HARD)}, ["name", "policies"])
CREATE_215 = _group({"name": NAME, "policies": _policies(_ALL)}, ["name", "policies"])
CREATE_264 = _group({"name": NAME, "policy": {"type": "string", "enum": _ALL},
                     "rules": {"type": "object",
                               "properties": {"max_server_per_host": _POSITIVE_INT},
                               "additionalProperties": False}},
                    ["name", "policy"])

_QUERY_PROPERTIES = {"all_projects": {"type": "string"},
                     "limit": {"type": "string", "pattern": "^[0-9]+$"},
                     "offset": {"type": "string", "pattern": "^[0-9]+$"}}
INDEX_QUERY_21 = {"type": "object", "properties": _QUERY_PROPERTIES,
                  "additionalProperties": True}
INDEX_QUERY_275 = {**INDEX_QUERY_21, "additionalProperties": False}

# os:scheduler_hints on server create: the hints the scheduler acts on are checked,
# others pass (Nova accepts hints it has no filter for).
_ONE_OR_MORE_UUIDS = {"oneOf": [UUID, {"type": "array", "items": UUID, "minItems": 1}]}
SCHEDULER_HINTS = {"type": "object",
                   "properties": {"group": UUID, "different_host": _ONE_OR_MORE_UUIDS,
                                  "same_host": _ONE_OR_MORE_UUIDS},
                   "additionalProperties": True}

AtLeast = Callable[[str], bool]


def create(at_least: AtLeast) -> dict[str, Any]:
    """2.15: the soft policies; 2.64: one `policy` and its `rules` instead of `policies`."""
    for version, schema in (("2.64", CREATE_264), ("2.15", CREATE_215)):
        if at_least(version):
            return schema
    return CREATE_21


def index_query(at_least: AtLeast) -> dict[str, Any]:
    """2.75: unknown query parameters are a 400."""
    return INDEX_QUERY_275 if at_least("2.75") else INDEX_QUERY_21
