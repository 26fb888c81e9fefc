"""Server group policies in scheduling: the hard ones filter hosts, the soft ones weigh.

They read what the scheduler loaded for the request (load_group_hosts): how many
members of the group placement holds on each host, counting this request's own
instances as they are placed, so a multi-create spreads (or packs) among itself.
"""

from __future__ import annotations

from novalet.compute.payloads import RequestSpec
from novalet.db import server_groups as db_groups
from novalet.db.engine import Database
from novalet.scheduler.filters import HostFilter, HostState, register
from novalet.scheduler.weighers import HostWeigher
from novalet.scheduler.weighers import register as register_weigher


async def load_group_hosts(db: Database, spec: RequestSpec,
                           unplaced: list[str] | None = None) -> None:
    """Fill spec.group_hosts from the database (one read) and note the group's
    generation, which the claim compares and bumps. `unplaced` (default: all of
    the request's instances) don't count even if they hold a claim from an earlier
    attempt; re-read after a lost claim, the ones already placed do count."""
    if not spec.group:
        return
    spec.group_generation, spec.group_hosts = await db_groups.member_hosts(
        db, spec.group.uuid,
        exclude=spec.instance_uuids if unplaced is None else unplaced)


def claim_guard(spec: RequestSpec) -> tuple[str, int] | None:
    """(group uuid, generation read) for placement.claim: the claim of a member wins
    only if no other claim for the group came since the scheduler read its members."""
    if not spec.group or spec.group_generation is None:
        return None
    return spec.group.uuid, spec.group_generation


def note_placed(spec: RequestSpec, host: str) -> None:
    """One more member on `host`: an instance of this request was just claimed there
    (and the claim bumped the group's generation)."""
    if spec.group:
        spec.group_hosts[host] = spec.group_hosts.get(host, 0) + 1
        if spec.group_generation is not None:
            spec.group_generation += 1


def _policy(spec: RequestSpec) -> str | None:
    return spec.group.policy if spec.group else None


@register
class ServerGroupAffinityFilter(HostFilter):
    """affinity: once a member is placed, only its host passes."""

    name = "ServerGroupAffinityFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return _policy(spec) == "affinity" and bool(spec.group_hosts)

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        if _policy(spec) != "affinity" or not spec.group_hosts:
            return None
        if host.host in spec.group_hosts:
            return None
        assert spec.group is not None
        return (f"not the host of server group {spec.group.uuid} "
                f"({', '.join(sorted(spec.group_hosts))})")


@register
class ServerGroupAntiAffinityFilter(HostFilter):
    """anti-affinity: a host passes while it holds fewer members than the group's
    max_server_per_host rule (default 1)."""

    name = "ServerGroupAntiAffinityFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return _policy(spec) == "anti-affinity" and bool(spec.group_hosts)

    def reject_reason(self, host: HostState, spec: RequestSpec) -> str | None:
        if _policy(spec) != "anti-affinity":
            return None
        assert spec.group is not None
        limit = spec.group.max_server_per_host
        members = spec.group_hosts.get(host.host, 0)
        if members < limit:
            return None
        return (f"has {members} member(s) of server group {spec.group.uuid}, "
                f"max_server_per_host is {limit}")


@register_weigher
class ServerGroupSoftAffinityWeigher(HostWeigher):
    """soft-affinity: the more members a host has, the better."""

    name = "ServerGroupSoftAffinityWeigher"
    multiplier_option = "soft_affinity_weight_multiplier"

    def applies(self, spec: RequestSpec) -> bool:
        return _policy(spec) == "soft-affinity"

    def raw_weight(self, host: HostState, spec: RequestSpec) -> float:
        if _policy(spec) != "soft-affinity":
            return 0.0
        return float(spec.group_hosts.get(host.host, 0))


@register_weigher
class ServerGroupSoftAntiAffinityWeigher(HostWeigher):
    """soft-anti-affinity: the fewer members a host has, the better."""

    name = "ServerGroupSoftAntiAffinityWeigher"
    multiplier_option = "soft_anti_affinity_weight_multiplier"

    def applies(self, spec: RequestSpec) -> bool:
        return _policy(spec) == "soft-anti-affinity"

    def raw_weight(self, host: HostState, spec: RequestSpec) -> float:
        if _policy(spec) != "soft-anti-affinity":
            return 0.0
        return -float(spec.group_hosts.get(host.host, 0))
