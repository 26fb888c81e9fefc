"""Version caps for rolling upgrades: `[upgrade_levels]` as Nova has it.

While some hosts still run the previous release, the services that call them
are told (`[upgrade_levels] compute = 1.0`, say) not to send newer messages
than those hosts understand; each client then sends every method at the
newest version within the cap, backporting its models (rpc/models.py). Each
rpc client reads the caps from the configuration it is built with (the API's
as well as the conductor's and compute hosts'), so no process can forget to.
"""

from __future__ import annotations

from novalet import config
from novalet.rpc.bus import parse_version

SERVICES = ("compute", "conductor", "network", "scheduler")


class Caps:
    """`[upgrade_levels]` of one configuration (empty: no cap), checked when read."""

    def __init__(self, caps: dict[str, str] | None = None) -> None:
        self.caps = dict(caps or {})
        for value in self.caps.values():
            parse_version(value)  # refuses a malformed cap at start

    @classmethod
    def from_conf(cls, conf: config.Config) -> Caps:
        caps = {service: str(conf.get("upgrade_levels", service) or "").strip()
                for service in SERVICES}
        return cls({service: value for service, value in caps.items() if value})

    def cap(self, service: str) -> str | None:
        return self.caps.get(service)

    def version(self, service: str, wanted: str, fallback: str = "1.0") -> str:
        """`wanted` if the cap of `service` allows it, else `fallback` (the version
        the method had before `wanted` changed it)."""
        limit = self.caps.get(service)
        if limit is None or parse_version(wanted) <= parse_version(limit):
            return wanted
        return fallback
