"""JSON schemas of os-security-groups and os-security-group-rules requests. Nova checks
these nova-network bodies by hand (security_groups.from_body keeps its messages); the
schemas describe them for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from novalet.api.validation import QUERY_INT, QUERY_STRING

_ID = {"type": ["string", "integer"]}
_PORT = {"type": ["string", "integer", "null"]}

GROUP: dict[str, Any] = {
    "type": "object",
    "properties": {"security_group": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
        "required": ["name", "description"]}},
    "required": ["security_group"],
}

RULE: dict[str, Any] = {
    "type": "object",
    "properties": {"security_group_rule": {
        "type": "object",
        "properties": {"parent_group_id": _ID, "ip_protocol": {"type": ["string", "null"]},
                       "from_port": _PORT, "to_port": _PORT, "cidr": {"type": "string"},
                       "group_id": {"type": ["string", "integer", "null"]}},
        "required": ["parent_group_id"]}},
    "required": ["security_group_rule"],
}

# Server actions addSecurityGroup and removeSecurityGroup.
SERVER_GROUP: dict[str, Any] = {
    "type": "object", "properties": {"name": {"type": "string", "minLength": 1}},
    "required": ["name"]}

INDEX_QUERY: dict[str, Any] = {
    "type": "object",
    "properties": {"limit": QUERY_INT, "offset": QUERY_INT, "all_tenants": QUERY_STRING},
    "additionalProperties": True,
}
