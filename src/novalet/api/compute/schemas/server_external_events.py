"""Body schemas of POST /os-server-external-events: the event names grow with the
microversion."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# (first microversion, event name)
EVENT_NAMES: list[tuple[str, str]] = [
    ("2.1", "network-changed"), ("2.1", "network-vif-plugged"),
    ("2.1", "network-vif-unplugged"), ("2.1", "network-vif-deleted"),
    ("2.51", "volume-extended"), ("2.76", "power-update"),
    ("2.82", "accelerator-request-bound"), ("2.93", "volume-reimaged"),
]


def create(at_least: Callable[[str], bool]) -> dict[str, Any]:
    """The schema for a request's microversion (one object per set of names, so
    the validator built for it is reused)."""
    return _create(tuple(name for first, name in EVENT_NAMES if at_least(first)))


@functools.cache
def _create(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"events": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "server_uuid": {"type": "string", "format": "uuid"},
                    "name": {"type": "string", "enum": list(names)},
                    "status": {"type": "string",
                               "enum": ["failed", "completed", "in-progress"]},
                    "tag": {"type": "string", "maxLength": 255},
                },
                "required": ["server_uuid", "name"],
                "additionalProperties": False,
            }}},
        "required": ["events"],
        "additionalProperties": False,
    }
