"""JSON schemas of the floating IP server actions (addFloatingIp, removeFloatingIp)."""

from __future__ import annotations

from typing import Any

_IP = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}

ADD_FLOATING_IP: dict[str, Any] = {
    "type": "object",
    "properties": {"addFloatingIp": {
        "type": "object", "properties": {"address": _IP, "fixed_address": _IP},
        "required": ["address"], "additionalProperties": False}},
    "required": ["addFloatingIp"], "additionalProperties": False,
}

REMOVE_FLOATING_IP: dict[str, Any] = {
    "type": "object",
    "properties": {"removeFloatingIp": {
        "type": "object", "properties": {"address": _IP},
        "required": ["address"], "additionalProperties": False}},
    "required": ["removeFloatingIp"], "additionalProperties": False,
}

# POST /os-floating-ips: the body (and its pool) may be left out.
CREATE: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {"pool": {"type": ["string", "null"]}},
}
