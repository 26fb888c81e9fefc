"""Query schemas of os-simple-tenant-usage (values arrive as strings; other
parameters are ignored, as in Nova)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

QUERY_21: dict[str, Any] = {
    "type": "object",
    "properties": {"start": {"type": "string"}, "end": {"type": "string"},
                   "detailed": {"type": "string"}},
    "additionalProperties": True,
}

# 2.40: paging over instances.
QUERY_240 = copy.deepcopy(QUERY_21)
QUERY_240["properties"].update({"limit": {"type": "string"}, "marker": {"type": "string"}})


def query(at_least: Callable[[str], bool]) -> dict[str, Any]:
    return QUERY_240 if at_least("2.40") else QUERY_21
