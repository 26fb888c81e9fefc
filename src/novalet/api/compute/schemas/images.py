"""JSON schemas of the image proxy's requests (/images up to 2.35, their metadata up
to 2.38)."""

from __future__ import annotations

from typing import Any

from novalet.api.validation import METADATA_KEY, QUERY_INT

# Nova's metadata: any number of items (the metadata_items quota counts them: 403).
_METADATA: dict[str, Any] = {
    "type": "object",
    "patternProperties": {METADATA_KEY: {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}

METADATA_ALL: dict[str, Any] = {
    "type": "object", "properties": {"metadata": _METADATA}, "required": ["metadata"],
    "additionalProperties": False,
}

METADATA_ONE: dict[str, Any] = {
    "type": "object",
    "properties": {"meta": {**_METADATA, "minProperties": 1, "maxProperties": 1}},
    "required": ["meta"], "additionalProperties": False,
}

# The filters are Nova's (name, status, changes-since, server, type, minRam, minDisk,
# property-*); others are ignored. Paging: limit and marker.
LIST_QUERY: dict[str, Any] = {
    "type": "object",
    "properties": {"limit": QUERY_INT, "minRam": QUERY_INT, "minDisk": QUERY_INT},
    "additionalProperties": True,
}
