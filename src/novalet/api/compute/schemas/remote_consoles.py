"""JSON schemas of POST /servers/{id}/remote-consoles (2.6 on) and of the old
os-get*Console server actions (2.1 to 2.5), with Nova's enums."""

from __future__ import annotations

from typing import Any

_PROTOCOLS_26 = ["vnc", "spice", "serial", "rdp"]
_TYPES_26 = ["novnc", "xvpvnc", "spice-html5", "serial", "rdp-html5"]


def _create(protocols: list[str], types: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"remote_console": {
            "type": "object",
            "properties": {"protocol": {"type": "string", "enum": protocols},
                           "type": {"type": "string", "enum": types}},
            "required": ["protocol", "type"], "additionalProperties": False}},
        "required": ["remote_console"], "additionalProperties": False,
    }


# (first microversion, schema): 2.8 adds the mks protocol and its webmks type,
# 2.99 the spice-direct type.
CREATE: list[tuple[str, dict[str, Any]]] = [
    ("2.6", _create(_PROTOCOLS_26, _TYPES_26)),
    ("2.8", _create(_PROTOCOLS_26 + ["mks"], _TYPES_26 + ["webmks"])),
    ("2.99", _create(_PROTOCOLS_26 + ["mks"], _TYPES_26 + ["webmks", "spice-direct"])),
]


def _action(types: list[str]) -> dict[str, Any]:
    """The value of one old console action: {"type": <one of types>}."""
    return {"type": "object", "properties": {"type": {"type": "string", "enum": types}},
            "required": ["type"], "additionalProperties": False}


# action key -> the console types it takes
ACTION_TYPES: dict[str, list[str]] = {
    "os-getVNCConsole": ["novnc", "xvpvnc"],
    "os-getSPICEConsole": ["spice-html5"],
    "os-getSerialConsole": ["serial"],
    "os-getRDPConsole": ["rdp-html5"],
}
ACTIONS: dict[str, dict[str, Any]] = {key: _action(types) for key, types in ACTION_TYPES.items()}
# The same, as whole bodies ({"os-getVNCConsole": {...}}), for messages naming the key.
ACTION_BODIES: dict[str, dict[str, Any]] = {
    key: {"type": "object", "properties": {key: schema}, "required": [key]}
    for key, schema in ACTIONS.items()}
