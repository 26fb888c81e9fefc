"""Query schemas of os-hypervisors, by microversion (query values arrive as strings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_BOOL_STRING = {"type": "string",
                "enum": ["true", "false", "True", "False", "1", "0", "yes", "no", "on", "off"]}

# 2.1-2.32: no parameters (others are ignored, as in Nova).
INDEX_21: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}

# 2.33: paging.
INDEX_233: dict[str, Any] = {
    "type": "object",
    "properties": {"limit": {"type": "string"}, "marker": {"type": "string"}},
    "additionalProperties": True,
}

# 2.53: the hostname pattern and with_servers; nothing else is accepted.
INDEX_253: dict[str, Any] = {
    "type": "object",
    "properties": {"limit": {"type": "string"}, "marker": {"type": "string"},
                   "hypervisor_hostname_pattern": {"type": "string", "minLength": 1,
                                                   "maxLength": 255},
                   "with_servers": _BOOL_STRING},
    "additionalProperties": False,
}

SHOW_253: dict[str, Any] = {
    "type": "object",
    "properties": {"with_servers": _BOOL_STRING},
    "additionalProperties": False,
}


def index_query(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """2.1: nothing; 2.33: limit and marker; 2.53: pattern and with_servers, strictly."""
    if at_least("2.53"):
        return INDEX_253
    return INDEX_233 if at_least("2.33") else INDEX_21


def show_query(at_least: Callable[[str], bool]) -> dict[str, Any]:
    return SHOW_253 if at_least("2.53") else INDEX_21
