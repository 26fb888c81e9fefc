"""JSON schemas of os-quota-sets and os-quota-class-sets, by microversion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from novalet.api.validation import BOOLEAN
from novalet.db.limits import INT_MAX

# The API's names for quota resources: Nova shows injected_file_path_length as
# injected_file_path_bytes.
API_NAMES: dict[str, str] = {"injected_file_path_length": "injected_file_path_bytes"}
RESOURCE_NAMES: dict[str, str] = {v: k for k, v in API_NAMES.items()}

_LIMIT = {"type": ["integer", "string"], "pattern": r"^-?[0-9]+$", "minimum": -1,
          "maximum": INT_MAX}

_COMMON = ("instances", "cores", "ram", "metadata_items", "key_pairs")
_PERSONALITY = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
_NETWORK = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
_GROUPS = ("server_groups", "server_group_members")


def quota_set_fields(at_least: Callable[[str], bool]) -> tuple[str, ...]:
    """API names os-quota-sets shows and takes: 2.36 drops the network quotas,
    2.57 the personality ones."""
    fields: tuple[str, ...] = _COMMON + _GROUPS
    if not at_least("2.57"):
        fields += _PERSONALITY
    if not at_least("2.36"):
        fields += _NETWORK
    return fields


def quota_class_fields(at_least: Callable[[str], bool]) -> tuple[str, ...]:
    """API names os-quota-class-sets shows and takes: below 2.50 the network quotas
    and no server group ones; 2.50 swaps them; 2.57 drops the personality ones."""
    fields: tuple[str, ...] = _COMMON
    if not at_least("2.57"):
        fields += _PERSONALITY
    return fields + (_GROUPS if at_least("2.50") else _NETWORK)


def _body(key: str, fields: tuple[str, ...], force: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {name: _LIMIT for name in fields}
    if force:
        properties["force"] = BOOLEAN
    return {"type": "object",
            "properties": {key: {"type": "object", "properties": properties,
                                 "additionalProperties": False}},
            "required": [key], "additionalProperties": False}


_SET_BODIES: dict[tuple[bool, bool], dict[str, Any]] = {}
_CLASS_BODIES: dict[tuple[bool, bool], dict[str, Any]] = {}


def update_set(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """PUT /os-quota-sets/{id}: limits (-1 or more, integers or their strings) and force."""
    key = (at_least("2.36"), at_least("2.57"))
    if key not in _SET_BODIES:
        _SET_BODIES[key] = _body("quota_set", quota_set_fields(at_least), force=True)
    return _SET_BODIES[key]


def update_class(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """PUT /os-quota-class-sets/{id}."""
    key = (at_least("2.50"), at_least("2.57"))
    if key not in _CLASS_BODIES:
        _CLASS_BODIES[key] = _body("quota_class_set", quota_class_fields(at_least),
                                   force=False)
    return _CLASS_BODIES[key]


# Nova keeps unknown query parameters of os-quota-sets allowed at every microversion.
_QUERY: dict[str, Any] = {"type": "object",
                          "properties": {"user_id": {"type": "string",
                                                     "maxLength": 255}},
                          "additionalProperties": True}


def query(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """?user_id= on os-quota-sets; other parameters are ignored, as Nova ignores them."""
    return _QUERY
