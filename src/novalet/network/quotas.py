"""The network API's quotas (Neutron's `quotas` and `quota_details`) over the one
quota store the compute API's os-quota-sets writes too (compute/quotas.py).

Neutron's resource names map onto the limits this cloud enforces; where both faces
have a resource (floating IPs, security groups, rules) it is one stored limit:

| Neutron | stored limit | enforced by |
|---|---|---|
| network | networks | network/networks.py (per project) |
| subnet | none: shown as the networks limit, read-only | one subnet per network |
| port | ports | network/ports.py (its servers' NICs count) |
| router | routers | router creates (`[quota] routers`, default 10) |
| floatingip | floating_ips | both faces' allocation |
| security_group | security_groups | both faces' group create |
| security_group_rule | security_group_rules | rules per group, as nova-network |

Policy (Neutron's names): `get_quota` a reader of the project or an admin,
`update_quota` and `delete_quota` admin only; listing every project's is admin only.
"""

from __future__ import annotations

from collections.abc import Mapping

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.compute.quotas import UNLIMITED, QuotaEngine
from novalet.db import quotas as db_quotas
from novalet.db.engine import Database
from novalet.network.project_ids import check_project_id

# Neutron's name -> the stored resource (None: derived, not settable).
NAMES: dict[str, str | None] = {
    "network": "networks", "subnet": None, "port": "ports", "router": "routers",
    "floatingip": "floating_ips", "security_group": "security_groups",
    "security_group_rule": "security_group_rules"}
# What a subnet limit reads: a network has one subnet, so the networks limit bounds them.
SUBNET_BOUND = "networks"
STORED = tuple(r for r in NAMES.values() if r is not None)


class InvalidQuotaValue(exceptions.Conflict):
    neutron_type = "InvalidQuotaValue"
    msg_fmt = ("Change would make usage greater than the limit for the following "
               "resources: %(unders)s; delete some first, or send check_limit false.")


class SubnetQuotaFixed(exceptions.Invalid):
    neutron_type = "InvalidInput"
    msg_fmt = ("Invalid input for operation: the subnet quota can't be set here: a "
               "network has one subnet, so the network quota bounds subnets; set "
               "network instead.")


class NetworkQuotas:
    """Read and write a project's network limits, with Neutron's names."""

    def __init__(self, db: Database, engine: QuotaEngine) -> None:
        self.db = db
        self.engine = engine

    async def list_quotas(self, ctx: RequestContext) -> dict[str, dict[str, int]]:
        """project -> its limits, for the projects that set one of their own (admin)."""
        policy.enforce(ctx, "get_quota", "")  # no project is everybody's: admin only
        owned = await db_quotas.projects_with_limits(self.db, STORED)
        return {project: await self._limits(project) for project in owned}

    async def get_quota(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        policy.enforce(ctx, "get_quota", project_id)
        return await self._limits(project_id)

    async def default_quota(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        policy.enforce(ctx, "get_quota", project_id)
        return _neutron(await self.engine.defaults())

    async def quota_details(self, ctx: RequestContext, project_id: str
                            ) -> dict[str, dict[str, int]]:
        """Per resource: limit, used (counted from the rows) and reserved (always 0)."""
        policy.enforce(ctx, "get_quota", project_id)
        limits = await self._limits(project_id)
        used = await db_quotas.network_usage(self.db, project_id)
        return {name: {"limit": limits[name], "used": used.get(stored or "subnets", 0),
                       "reserved": 0}
                for name, stored in NAMES.items()}

    async def update_quota(self, ctx: RequestContext, project_id: str,
                           values: Mapping[str, int], check_limit: bool = True
                           ) -> dict[str, int]:
        """Set limits (-1 unlimited). With check_limit (the default, as Neutron's
        quota-check-limit-default), a limit below what the project holds is refused;
        without, it is stored and only new creates are refused."""
        policy.enforce(ctx, "update_quota", project_id)
        check_project_id(project_id)  # what the quota rows and the network rows hold
        if "subnet" in values:
            raise SubnetQuotaFixed()
        stored = {NAMES[name] or "": int(limit) for name, limit in values.items()}
        if check_limit:
            used = await db_quotas.network_usage(self.db, project_id)
            unders = sorted(name for name, limit in values.items()
                            if limit != UNLIMITED and limit < used.get(NAMES[name] or "", 0))
            if unders:
                raise InvalidQuotaValue(unders=unders)
        # checked above with the network face's usage (the engine counts Nova's only)
        await self.engine.update(project_id, None, stored, force=True)
        return await self._limits(project_id)

    async def delete_quota(self, ctx: RequestContext, project_id: str) -> None:
        """Back to the defaults: the project's network limits are forgotten (its
        compute limits stay: os-quota-sets DELETE forgets those)."""
        policy.enforce(ctx, "delete_quota", project_id)
        await db_quotas.delete_project_resources(self.db, project_id, STORED)

    async def _limits(self, project_id: str) -> dict[str, int]:
        return _neutron(await self.engine.limits(project_id))


def _neutron(limits: Mapping[str, int]) -> dict[str, int]:
    return {name: limits[stored or SUBNET_BOUND] for name, stored in NAMES.items()}
