"""JSON schema of POST /servers/{id}/os-interface."""

from __future__ import annotations

from typing import Any

ATTACH: dict[str, Any] = {
    "type": "object",
    "properties": {"interfaceAttachment": {
        "type": "object",
        "properties": {
            "net_id": {"type": "string", "format": "uuid"},
            "port_id": {"type": "string", "format": "uuid"},
            "fixed_ips": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                "type": "object",
                "properties": {"ip_address": {"type": "string", "format": "ipv4"}},
                "required": ["ip_address"], "additionalProperties": False}},
            "tag": {"type": "string", "minLength": 1, "maxLength": 60},
        },
        "additionalProperties": False}},
    "additionalProperties": False,
}
