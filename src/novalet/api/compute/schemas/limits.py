"""JSON schema of the limits query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_QUERY_21: dict[str, Any] = {"type": "object",
                             "properties": {"tenant_id": {"type": "string"}},
                             "additionalProperties": True}
_QUERY_275 = {**_QUERY_21, "additionalProperties": False}


def index_query(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """2.75: parameters other than tenant_id are a 400."""
    return _QUERY_275 if at_least("2.75") else _QUERY_21
