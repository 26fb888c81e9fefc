"""The database's integer ranges are written once, in db/limits.py; the API's bounds
(JSON body, query parameters, flavor, quota and id fields) all come from there."""

from __future__ import annotations

import re
from pathlib import Path

import novalet
from novalet.api import json_body, validation
from novalet.api.compute.schemas import flavors
from novalet.compute.quotas import MAX_LIMIT
from novalet.db import limits

_BOUND = re.compile(r"0x7fffffff|2\s*\*\*\s*(31|63)|2147483647|9223372036854775807|"
                    r"len\(\w+\) > 20\b", re.IGNORECASE)


def test_integer_limits_are_written_once() -> None:
    root = Path(novalet.__file__).parent
    written = [f"{path.relative_to(root)}:{n}: {line.strip()}"
               for path in sorted(root.rglob("*.py")) if path.name != "limits.py"
               for n, line in enumerate(path.read_text().splitlines(), 1)
               if _BOUND.search(line)]
    assert written == []


def test_the_limits_are_those_of_the_columns() -> None:
    assert (limits.BIGINT_MIN, limits.BIGINT_MAX) == (-(2**63), 2**63 - 1)
    assert (limits.INT_MIN, limits.INT_MAX) == (-(2**31), 2**31 - 1)
    assert limits.MAX_DIGITS == len("-9223372036854775808")
    assert (json_body.INT_MIN, json_body.INT_MAX) == (limits.BIGINT_MIN, limits.BIGINT_MAX)
    assert validation.QUERY_INT_MAX == limits.BIGINT_MAX
    assert flavors.MAX_INT == MAX_LIMIT == limits.INT_MAX
