"""Query schemas of os-migrations, by microversion (values arrive as strings)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

_STRING = {"type": "string"}

# 2.1-2.58: filters; anything else is ignored.
INDEX_21: dict[str, Any] = {
    "type": "object",
    "properties": {"host": _STRING, "status": _STRING, "instance_uuid": _STRING,
                   "source_compute": _STRING, "migration_type": _STRING,
                   "hidden": _STRING},
    "additionalProperties": True,
}

# 2.59: paging and changes-since; unknown parameters are a 400.
INDEX_259 = copy.deepcopy(INDEX_21)
INDEX_259["properties"].update({"limit": _STRING, "marker": _STRING,
                                "changes-since": _STRING})
INDEX_259["additionalProperties"] = False

# 2.66: changes-before.
INDEX_266 = copy.deepcopy(INDEX_259)
INDEX_266["properties"]["changes-before"] = _STRING

# 2.80: user_id and project_id.
INDEX_280 = copy.deepcopy(INDEX_266)
INDEX_280["properties"].update({"user_id": _STRING, "project_id": _STRING})


def index_query(at_least: Callable[[str], bool]) -> dict[str, Any]:
    if at_least("2.80"):
        return INDEX_280
    if at_least("2.66"):
        return INDEX_266
    return INDEX_259 if at_least("2.59") else INDEX_21
