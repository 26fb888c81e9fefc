"""Handler for /limits: a project's absolute limits and what it uses of them."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import limits as schemas
from novalet.api.handler import ApiRequest
from novalet.api.validation import accepts
from novalet.policy import enforce

# (response name, quota name, first version without it or None)
_ABSOLUTE: list[tuple[str, str, str | None]] = [
    ("maxTotalInstances", "instances", None),
    ("maxTotalCores", "cores", None),
    ("maxTotalRAMSize", "ram", None),
    ("maxServerMeta", "metadata_items", None),
    ("maxImageMeta", "metadata_items", "2.39"),
    ("maxTotalKeypairs", "key_pairs", None),
    ("maxServerGroups", "server_groups", None),
    ("maxServerGroupMembers", "server_group_members", None),
    ("maxPersonality", "injected_files", "2.57"),
    ("maxPersonalitySize", "injected_file_content_bytes", "2.57"),
    ("maxTotalFloatingIps", "floating_ips", "2.36"),
    ("maxSecurityGroups", "security_groups", "2.36"),
    ("maxSecurityGroupRules", "security_group_rules", "2.36"),
]
# (response name, usage name, first version without it or None)
_USED: list[tuple[str, str, str | None]] = [
    ("totalInstancesUsed", "instances", None),
    ("totalCoresUsed", "cores", None),
    ("totalRAMUsed", "ram", None),
    ("totalServerGroupsUsed", "server_groups", None),
    ("totalFloatingIpsUsed", "floating_ips", "2.36"),
    ("totalSecurityGroupsUsed", "security_groups", "2.36"),
]


@accepts(query=schemas.index_query)
async def index(req: ApiRequest) -> dict[str, Any]:
    params = dict(req.query)
    enforce(req.ctx, "os_compute_api:limits")
    project_id = req.ctx.project_id or ""
    if "tenant_id" in params:
        enforce(req.ctx, "os_compute_api:limits:other_project")
        project_id = params["tenant_id"]
    detail = await req.app.quotas.detail(project_id)
    limits = {r: d["limit"] for r, d in detail.items()}
    usage = {r: d["in_use"] for r, d in detail.items()}
    return {"limits": {"rate": [], "absolute": absolute_limits(req, limits, usage)}}


def absolute_limits(req: ApiRequest, limits: dict[str, int], usage: dict[str, int]
                    ) -> dict[str, int]:
    """The limits and usage a microversion shows (2.36 drops network ones, 2.39
    maxImageMeta, 2.57 personality)."""
    def shown(gone_in: str | None) -> bool:
        return gone_in is None or not req.at_least(gone_in)

    result = {name: limits[quota] for name, quota, gone in _ABSOLUTE if shown(gone)}
    result.update({name: usage.get(key, 0) for name, key, gone in _USED if shown(gone)})
    return result
