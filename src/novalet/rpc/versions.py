"""Version caps for rolling upgrades: `[upgrade_levels]` as Nova has it.

While some hosts still run the previous release, the services that call them
are told (`[upgrade_levels] compute = 1.0`, say) not to send newer messages
than those hosts understand; each client then sends every method at the
newest version within the cap, backporting its models (rpc/models.py). The
caps are per process, set from its configuration when its services start.
"""

from __future__ import annotations

from novalet import config
from novalet.rpc.bus import parse_version

SERVICES = ("compute", "conductor", "network", "scheduler")
_caps: dict[str, str] = {}


def set_caps(conf: config.Config) -> None:
    """Read `[upgrade_levels]` (empty: no cap) for this process's clients."""
    for service in SERVICES:
        value = str(conf.get("upgrade_levels", service) or "").strip()
        if value:
            parse_version(value)  # refuses a malformed cap at start
            _caps[service] = value
        else:
            _caps.pop(service, None)


def cap(service: str) -> str | None:
    return _caps.get(service)


def can_send(service: str, version: str) -> bool:
    """Whether a message of `version` may go to `service` under its cap."""
    limit = _caps.get(service)
    return limit is None or parse_version(version) <= parse_version(limit)
