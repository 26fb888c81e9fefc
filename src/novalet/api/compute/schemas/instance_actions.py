"""JSON schemas of the os-instance-actions list query, by microversion."""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string"}


def _query(names: tuple[str, ...], strict: bool) -> dict[str, Any]:
    return {"type": "object", "properties": {name: _STRING for name in names},
            "additionalProperties": not strict}


# 2.58: limit, marker, changes-since; 2.66: changes-before; 2.75: nothing else.
INDEX_QUERY: list[tuple[str, dict[str, Any]]] = [
    ("2.1", _query((), False)),
    ("2.58", _query(("limit", "marker", "changes-since"), False)),
    ("2.66", _query(("limit", "marker", "changes-since", "changes-before"), False)),
    ("2.75", _query(("limit", "marker", "changes-since", "changes-before"), True)),
]
