"""Checks on a JSON request body that must hold before anything walks it.

- Nesting deeper than MAX_DEPTH is refused before parsing, by counting brackets
  in the raw bytes (no recursion), so no recursive code downstream (the
  parser, schema validation, error messages, the database layer) ever meets a
  document deep enough to hit Python's recursion limit.
- Integers outside the signed 64-bit range of the database's integer columns are
  refused (narrower columns, such as a flavor's 32-bit ram, vcpus and disk, are
  bounded by their schemas' maximum, as in Nova).
- NUL characters are refused anywhere in the body: no database stores them in
  text (PostgreSQL refuses them), and Nova's name types refuse them.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from novalet import exceptions
from novalet.db.limits import BIGINT_MAX, BIGINT_MIN

# Nova's deepest body (a server create with block devices and scheduler hints)
# nests fewer than 8 levels; 64 leaves room for any free-form object, and keeps
# recursive walkers (jsonschema descends with several frames per level) far from
# Python's recursion limit of 1000.
MAX_DEPTH = 64
INT_MIN, INT_MAX = BIGINT_MIN, BIGINT_MAX  # any integer column's range

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
for _open in b"[{":
    _STEP[_open] = 1
for _close in b"]}":
    _STEP[_close] = -1
# 19 digits: every integer out of the signed 64-bit range has at least as many.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


class TooDeep(exceptions.Invalid):
    msg_fmt = ("The request body nests deeper than %(limit)d levels of arrays and "
               "objects.")


class OutOfRange(exceptions.Invalid):
    msg_fmt = ("Invalid input for field/attribute %(field)s. Value: %(value)s. "
               "%(value)s is %(side)s than the %(bound)s of %(limit)d")


class NulInBody(exceptions.Invalid):
    msg_fmt = ("Invalid input for field/attribute %(field)s. NUL characters are not "
               "allowed.")


def depth(data: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings are
    not counted). Linear, without recursion."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_raw(data: bytes) -> None:
    """Before parsing: the nesting depth (counted only when there are enough
    opening brackets to go past it)."""
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and depth(data) > MAX_DEPTH:
        raise TooDeep(limit=MAX_DEPTH)


def check_parsed(data: bytes, body: Any) -> None:
    """After parsing: integers in range and no NUL in any string or key. The walk
    runs only when the raw text could hold either."""
    if not (_LONG_DIGITS.search(data) or b"\\u0000" in data):
        return
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        field, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    raise NulInBody(field=_shown(key))
                stack.append((f"{field}/{key}" if field else key, item))
        elif isinstance(value, list):
            stack.extend((f"{field}/{i}" if field else str(i), item)
                         for i, item in enumerate(value))
        elif isinstance(value, str):
            if "\x00" in value:
                raise NulInBody(field=field or "body")
        elif isinstance(value, int) and not isinstance(value, bool):
            if value > INT_MAX:
                raise OutOfRange(field=field or "body", value=value, side="greater",
                                 bound="maximum", limit=INT_MAX)
            if value < INT_MIN:
                raise OutOfRange(field=field or "body", value=value, side="less",
                                 bound="minimum", limit=INT_MIN)


def _shown(key: str) -> str:
    return repr(key) if len(key) <= 60 else repr(key[:57] + "...")
