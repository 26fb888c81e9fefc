"""JSON schemas of keypair requests and list queries, by microversion."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from novalet.api.validation import NAME

_NAME_21 = {"allOf": [NAME, {"type": "string", "pattern": r"^[_\- a-zA-Z0-9]+$"}]}
# 2.92 also allows '@' and '.' in names.
_NAME_292 = {"allOf": [NAME, {"type": "string", "pattern": r"^[_\-@. a-zA-Z0-9]+$"}]}


def _create(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object",
            "properties": {"keypair": {"type": "object", "properties": properties,
                                       "required": required, "additionalProperties": False}},
            "required": ["keypair"], "additionalProperties": False}


_BASE = {"name": _NAME_21, "public_key": {"type": "string"}}
CREATE_21 = _create(_BASE, ["name"])
CREATE_22 = _create({**_BASE, "type": {"type": "string", "enum": ["ssh", "x509"]}}, ["name"])
CREATE_210 = _create({**CREATE_22["properties"]["keypair"]["properties"],
                      "user_id": {"type": "string"}}, ["name"])
CREATE_292 = _create({**CREATE_210["properties"]["keypair"]["properties"], "name": _NAME_292},
                     ["name", "public_key"])

_QUERY_21: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}
_QUERY_210 = copy.deepcopy(_QUERY_21)
_QUERY_210["properties"]["user_id"] = {"type": "string"}
_QUERY_275 = {**_QUERY_210, "additionalProperties": False}
_INDEX_QUERY_235 = copy.deepcopy(_QUERY_210)
_INDEX_QUERY_235["properties"].update({"limit": {"type": "string"},
                                       "marker": {"type": "string"}})
_INDEX_QUERY_275 = {**_INDEX_QUERY_235, "additionalProperties": False}

AtLeast = Callable[[str], bool]


def create(at_least: AtLeast) -> dict[str, Any]:
    """2.2: a type; 2.10: an admin may name the user; 2.92: public_key is required."""
    for version, schema in (("2.92", CREATE_292), ("2.10", CREATE_210), ("2.2", CREATE_22)):
        if at_least(version):
            return schema
    return CREATE_21


def index_query(at_least: AtLeast) -> dict[str, Any]:
    """2.10: user_id; 2.35: limit and marker; 2.75: nothing else."""
    for version, schema in (("2.75", _INDEX_QUERY_275), ("2.35", _INDEX_QUERY_235),
                            ("2.10", _QUERY_210)):
        if at_least(version):
            return schema
    return _QUERY_21


def item_query(at_least: AtLeast) -> dict[str, Any]:
    """The query of show and delete: 2.10: user_id; 2.75: nothing else."""
    for version, schema in (("2.75", _QUERY_275), ("2.10", _QUERY_210)):
        if at_least(version):
            return schema
    return _QUERY_21
