"""A user's extra attributes: what Keystone stores beside the ones it knows.

Keystone keeps any attribute a user create or update names that is not one of
its own (Tempest's `project_id`, `description`, ...) and returns it at the top
level of the user; an update merges into those already kept. Novalet does the
same, bounded in number and size so a user row stays small.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from novalet import exceptions

# Attributes with a meaning of their own (a column, or what the API derives).
KNOWN = frozenset({"name", "password", "enabled", "default_project_id", "email",
                   "options", "domain_id"})
# Response fields an extra attribute may not shadow.
RESERVED = frozenset({"id", "links", "password_expires_at"})
MAX_ITEMS = 32
MAX_KEY_LENGTH = 255
MAX_BYTES = 16384  # the attributes JSON-encoded


class InvalidExtraAttributes(exceptions.Invalid):
    msg_fmt = "Invalid input: %(reason)s"


def of(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The extra attributes among a request's user fields."""
    return {key: value for key, value in fields.items() if key not in KNOWN}


def merged(current: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The extra attributes a user keeps after a create (current None) or update
    naming `fields`; InvalidExtraAttributes when they are reserved or too many."""
    extra = {**(current or {}), **of(fields)}
    reserved = sorted(RESERVED & extra.keys())
    if reserved:
        raise InvalidExtraAttributes(reason=f"'{reserved[0]}' is set by the server.")
    long_keys = [key for key in extra if len(key) > MAX_KEY_LENGTH]
    if long_keys:
        raise InvalidExtraAttributes(
            reason=f"attribute names are at most {MAX_KEY_LENGTH} characters long.")
    if len(extra) > MAX_ITEMS:
        raise InvalidExtraAttributes(
            reason=f"a user has at most {MAX_ITEMS} extra attributes, not {len(extra)}.")
    if len(json.dumps(extra)) > MAX_BYTES:
        raise InvalidExtraAttributes(
            reason=f"a user's extra attributes take at most {MAX_BYTES} bytes as JSON.")
    return extra
