"""The different_host and same_host scheduler hints: a server uuid or a list of them."""

from __future__ import annotations

from typing import Any

from novalet.compute.payloads import RequestSpec
from novalet.db import server_groups as db_groups
from novalet.db.engine import Database
from novalet.scheduler.filters import HostFilter, HostState, register

HINTS = ("different_host", "same_host")


def hinted_uuids(value: Any) -> list[str]:
    """A hint's servers: one uuid or a list of them."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


async def load_hinted_hosts(db: Database, spec: RequestSpec) -> None:
    """Fill spec.hinted_hosts: for each hint given, the hosts of its servers (one read
    for both hints)."""
    wanted = {key: hinted_uuids(spec.scheduler_hints[key])
              for key in HINTS if key in spec.scheduler_hints}
    if not wanted:
        return
    hosts = await db_groups.hosts_of_instances(
        db, sorted({uuid for uuids in wanted.values() for uuid in uuids}))
    spec.hinted_hosts = {key: sorted({hosts[u] for u in uuids if u in hosts})
                         for key, uuids in wanted.items()}


@register
class DifferentHostFilter(HostFilter):
    """Only hosts running none of the different_host servers pass."""

    name = "DifferentHostFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.hinted_hosts.get("different_host"))

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        if host.host in spec.hinted_hosts.get("different_host", ()):
            return "runs a server named by the different_host hint"
        return None


@register
class SameHostFilter(HostFilter):
    """With a same_host hint, only hosts running one of its servers pass."""

    name = "SameHostFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return "same_host" in spec.hinted_hosts

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        if "same_host" not in spec.hinted_hosts:
            return None
        if host.host in spec.hinted_hosts["same_host"]:
            return None
        return "runs none of the servers named by the same_host hint"
