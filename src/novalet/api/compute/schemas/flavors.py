"""JSON schemas of flavor requests (create, update, list queries), by microversion."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from novalet.api.validation import BOOLEAN, NAME
from novalet.db.limits import INT_MAX

MAX_INT = INT_MAX  # flavor sizes are 32-bit columns
MAX_FLOAT = 3.40282e+38
SORT_KEYS = ["created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id",
             "is_public", "memory_mb", "name", "root_gb", "rxtx_factor", "swap",
             "updated_at", "vcpu_weight", "vcpus"]

_POSITIVE = {"type": ["integer", "string"], "pattern": r"^[0-9]+$", "minimum": 1,
             "maximum": MAX_INT}
_NON_NEGATIVE = {**_POSITIVE, "minimum": 0}
DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 65535,
               "pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"}

CREATE_21: dict[str, Any] = {
    "type": "object",
    "properties": {"flavor": {
        "type": "object",
        "properties": {
            "name": NAME,
            "id": {"type": ["string", "number", "null"], "minLength": 1, "maxLength": 255,
                   "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
            "ram": _POSITIVE,
            "vcpus": _POSITIVE,
            "disk": _NON_NEGATIVE,
            "OS-FLV-EXT-DATA:ephemeral": _NON_NEGATIVE,
            "swap": _NON_NEGATIVE,
            "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$",
                            "exclusiveMinimum": 0, "maximum": MAX_FLOAT},
            "os-flavor-access:is_public": BOOLEAN,
        },
        "required": ["name", "ram", "vcpus", "disk"],
        "additionalProperties": False,
    }},
    "required": ["flavor"],
    "additionalProperties": False,
}

CREATE_255 = copy.deepcopy(CREATE_21)
CREATE_255["properties"]["flavor"]["properties"]["description"] = DESCRIPTION
CREATE_2102 = copy.deepcopy(CREATE_255)
del CREATE_2102["properties"]["flavor"]["properties"]["rxtx_factor"]

UPDATE_255: dict[str, Any] = {
    "type": "object",
    "properties": {"flavor": {
        "type": "object",
        "properties": {"description": DESCRIPTION},
        "required": ["description"],
        "additionalProperties": False,
    }},
    "required": ["flavor"],
    "additionalProperties": False,
}

# Query values arrive as strings; limit is checked by query_int.
INDEX_QUERY_21: dict[str, Any] = {
    "type": "object",
    "properties": {
        "limit": {"type": "string"},
        "marker": {"type": "string"},
        "is_public": {"type": "string"},
        "minRam": {"type": "string"},
        "minDisk": {"type": "string"},
        "sort_key": {"type": "string", "enum": SORT_KEYS},
        "sort_dir": {"type": "string", "enum": ["asc", "desc"]},
    },
    "additionalProperties": True,
}
INDEX_QUERY_275 = {**INDEX_QUERY_21, "additionalProperties": False}
INDEX_QUERY_2102 = copy.deepcopy(INDEX_QUERY_275)
INDEX_QUERY_2102["properties"]["name"] = {"type": "string"}
INDEX_QUERY_2102["properties"]["sort_key"]["enum"] = [k for k in SORT_KEYS if k != "rxtx_factor"]


def create(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """2.1: the base body; 2.55: a description may be given; 2.102: no rxtx_factor."""
    if at_least("2.102"):
        return CREATE_2102
    return CREATE_255 if at_least("2.55") else CREATE_21


def index_query(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """2.75: unknown query parameters are a 400; 2.102: a name filter (a regular
    expression), and no sorting by rxtx_factor."""
    if at_least("2.102"):
        return INDEX_QUERY_2102
    return INDEX_QUERY_275 if at_least("2.75") else INDEX_QUERY_21
