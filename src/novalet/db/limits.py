"""The integer ranges database columns hold: the one place the API's bounds come from.

A value outside a column's range fails in the database (SQLite and asyncpg raise an
overflow, MariaDB truncates), so every edge refuses it with a 400 first: the JSON
body reader and query parameters against the 64-bit range, fields stored in 32-bit
columns (Nova's Integer: flavor sizes, quota limits, ids of aggregates, services and
hypervisors) against the 32-bit one.
"""

from __future__ import annotations

# 64-bit columns (BigInteger), and every integer SQLite stores.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# 32-bit columns (Integer, as Nova's models declare most counts and ids).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Characters of the longest integer any column holds, sign included ("-" and 19
# digits): a longer integer string is out of every range without being parsed.
MAX_DIGITS = len(str(BIGINT_MIN))
