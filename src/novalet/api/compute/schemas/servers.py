"""JSON schemas of server requests, by microversion range."""

from __future__ import annotations

import copy
from typing import Any

from novalet.api.validation import BOOLEAN, NAME, METADATA
from novalet.api.compute.schemas.server_groups import SCHEDULER_HINTS

_HOSTNAME = {"type": "string", "minLength": 1, "maxLength": 63,
             "pattern": r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$"}
_FQDN = {"type": "string", "minLength": 1, "maxLength": 255,
         "pattern": r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$"}
TAG = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": r"^[^,/]*$"}
_DESCRIPTION = {"type": ["string", "null"], "maxLength": 255,
                "pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"}
_IP = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
_NETWORK = {"type": "object", "properties": {
    "uuid": {"type": "string"}, "port": {"type": ["string", "null"]},
    "fixed_ip": _IP, "tag": TAG}, "additionalProperties": False}
# Known keys of a block device mapping (v2) are typed; boots from volumes are refused
# later, with a message saying why.
_BDM_V2 = {"type": "object", "properties": {
    "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
    "destination_type": {"type": "string", "enum": ["local", "volume"]},
    "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": r"^[a-zA-Z0-9._-]*$"},
    "boot_index": {"type": ["integer", "string", "null"], "pattern": r"^-?[0-9]+$",
                   "maxLength": 20},
    "device_name": {"type": ["string", "null"], "maxLength": 255},
    "volume_size": {"type": ["integer", "string", "null"], "pattern": r"^[0-9]+$",
                    "maxLength": 20},
    "delete_on_termination": BOOLEAN,
    "guest_format": {"type": "string", "maxLength": 255},
    "disk_bus": {"type": "string", "maxLength": 255},
    "device_type": {"type": "string", "maxLength": 255},
    "volume_type": {"type": ["string", "null"], "maxLength": 255}}}
_SECURITY_GROUP = {"type": "object", "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 255}},
    "additionalProperties": False}

_SERVER_21: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": NAME,
        "imageRef": {"type": "string", "maxLength": 255},
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "adminPass": {"type": "string"},
        "metadata": METADATA,
        "networks": {"type": "array", "items": _NETWORK},
        "key_name": NAME,
        "user_data": {"type": "string", "maxLength": 65535},
        "availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
        "min_count": {"type": ["integer", "string"], "pattern": r"^[0-9]+$", "minimum": 1},
        "max_count": {"type": ["integer", "string"], "pattern": r"^[0-9]+$", "minimum": 1},
        "return_reservation_id": {"type": ["boolean", "string"]},
        "config_drive": {"type": ["boolean", "string", "null"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
        "personality": {"type": "array"},
        "security_groups": {"type": "array", "items": _SECURITY_GROUP},
        "block_device_mapping": {"type": "array", "items": {"type": "object"}},
        "block_device_mapping_v2": {"type": "array", "items": _BDM_V2},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
    },
    "required": ["name", "flavorRef"],
    "additionalProperties": False,
}


def _create(server: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "server": server, "os:scheduler_hints": SCHEDULER_HINTS,
        "OS-SCH-HNT:scheduler_hints": SCHEDULER_HINTS},
        "required": ["server"], "additionalProperties": False}


def _evolve(base: dict[str, Any], add: dict[str, Any] | None = None,
            drop: tuple[str, ...] = (), required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = copy.deepcopy(base)
    schema["properties"].update(add or {})
    for key in drop:
        schema["properties"].pop(key, None)
    schema["required"] = schema["required"] + list(required)
    return schema


_S219 = _evolve(_SERVER_21, {"description": _DESCRIPTION})
_S237 = _evolve(_S219, {"networks": {"oneOf": [
    {"type": "array", "items": _NETWORK}, {"type": "string", "enum": ["auto", "none"]}]}},
    required=("networks",))
_S252 = _evolve(_S237, {"tags": {"type": "array", "items": TAG, "maxItems": 50}})
_S257 = _evolve(_S252, drop=("personality",))
_S274 = _evolve(_S257, {"host": _FQDN, "hypervisor_hostname": _FQDN})
_S290 = _evolve(_S274, {"hostname": _HOSTNAME})
_S294 = _evolve(_S290, {"hostname": _FQDN})

# (first version, schema), newest last
CREATE: list[tuple[str, dict[str, Any]]] = [
    ("2.1", _create(_SERVER_21)), ("2.19", _create(_S219)), ("2.37", _create(_S237)),
    ("2.52", _create(_S252)), ("2.57", _create(_S257)), ("2.74", _create(_S274)),
    ("2.90", _create(_S290)), ("2.94", _create(_S294)),
]

_UPDATE_21: dict[str, Any] = {"type": "object", "properties": {
    "name": NAME, "accessIPv4": {"type": "string", "format": "ipv4"},
    "accessIPv6": {"type": "string", "format": "ipv6"},
    "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]}},
    "required": [], "additionalProperties": False}
_U219 = _evolve(_UPDATE_21, {"description": _DESCRIPTION})
_U290 = _evolve(_U219, {"hostname": _HOSTNAME})
_U294 = _evolve(_U290, {"hostname": _FQDN})
_U2104 = _evolve(_U294, {"pinned_availability_zone": {"oneOf": [NAME, {"type": "null"}]}})


def _update(server: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"server": server}, "required": ["server"],
            "additionalProperties": False}


UPDATE: list[tuple[str, dict[str, Any]]] = [
    ("2.1", _update(_UPDATE_21)), ("2.19", _update(_U219)), ("2.90", _update(_U290)),
    ("2.94", _update(_U294)), ("2.104", _update(_U2104)),
]


_REBUILD_21: dict[str, Any] = {"type": "object", "properties": {
    "imageRef": {"type": "string", "minLength": 1}, "name": NAME,
    "adminPass": {"type": "string"}, "metadata": METADATA,
    "accessIPv4": {"type": "string", "format": "ipv4"},
    "accessIPv6": {"type": "string", "format": "ipv6"},
    "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
    "preserve_ephemeral": {"type": "boolean"}, "personality": {"type": "array"}},
    "required": ["imageRef"], "additionalProperties": False}
_R219 = _evolve(_REBUILD_21, {"description": _DESCRIPTION})
_R254 = _evolve(_R219, {"key_name": {"type": ["string", "null"]}})
_R257 = _evolve(_R254, {"user_data": {"type": ["string", "null"], "maxLength": 65535}},
                drop=("personality",))
_R263 = _evolve(_R257, {"trusted_image_certificates": {"type": ["array", "null"]}})
_R290 = _evolve(_R263, {"hostname": _HOSTNAME})
_R294 = _evolve(_R290, {"hostname": _FQDN})


def _rebuild(server: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"rebuild": server}, "required": ["rebuild"],
            "additionalProperties": False}


REBUILD: list[tuple[str, dict[str, Any]]] = [
    ("2.1", _rebuild(_REBUILD_21)), ("2.19", _rebuild(_R219)), ("2.54", _rebuild(_R254)),
    ("2.57", _rebuild(_R257)), ("2.63", _rebuild(_R263)), ("2.90", _rebuild(_R290)),
    ("2.94", _rebuild(_R294)),
]


def for_version(table: list[tuple[str, dict[str, Any]]], req: Any) -> dict[str, Any]:
    """The newest schema of `table` whose first version the request has reached."""
    chosen = table[0][1]
    for first, schema in table:
        if req.at_least(first):
            chosen = schema
    return chosen


def _list_query(names: list[str], strict: bool) -> dict[str, Any]:
    # Values arrive as text; server_filters reads them with Nova's own rules.
    return {"type": "object", "properties": {name: {"type": "string"} for name in names},
            "additionalProperties": not strict}


LIST_QUERY_NAMES = sorted([
    "name", "status", "image", "flavor", "host", "reservation_id", "changes-since",
    "changes-before", "tags", "tags-any", "not-tags", "not-tags-any", "all_tenants",
    "project_id", "tenant_id", "user_id", "locked", "availability_zone", "key_name",
    "uuid", "deleted", "limit", "marker", "sort_key", "sort_dir", "ip", "ip6", "node",
    "hostname", "vm_state", "task_state", "power_state", "description", "config_drive",
    "created_at", "launched_at", "terminated_at", "progress", "access_ip_v4",
    "access_ip_v6", "launch_index", "soft_deleted", "pinned_availability_zone"])
# 2.75: unknown parameters are a 400.
LIST_QUERY: list[tuple[str, dict[str, Any]]] = [
    ("2.1", _list_query(LIST_QUERY_NAMES, False)),
    ("2.75", _list_query(LIST_QUERY_NAMES, True)),
]
