"""Handler for /limits: a project's absolute limits and what it uses of them."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import limits as schemas
from novalet.api.handler import ApiRequest
from novalet.api.validation import validate
from novalet.compute.keypairs import MAX_KEYPAIRS_PER_USER
from novalet.db import instances
from novalet.policy import enforce

# Nova's default quotas. Per-project quotas replace these when quotas land.
DEFAULT_QUOTAS: dict[str, int] = {
    "instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128,
    "key_pairs": MAX_KEYPAIRS_PER_USER, "server_groups": 10, "server_group_members": 10,
    "injected_files": 5, "injected_file_content_bytes": 10240,
    "floating_ips": 10, "security_groups": 10, "security_group_rules": 20,
}

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


async def index(req: ApiRequest) -> dict[str, Any]:
    params = dict(req.query)
    validate(params, schemas.index_query(req.at_least))
    enforce(req.ctx, "os_compute_api:limits")
    project_id = req.ctx.project_id or ""
    if "tenant_id" in params:
        enforce(req.ctx, "os_compute_api:limits:other_project")
        project_id = params["tenant_id"]
    usage = {"server_groups": 0, "floating_ips": 0, "security_groups": 0,
             **await instances.count_for_project(req.app.db, project_id)}
    return {"limits": {"rate": [], "absolute": absolute_limits(req, usage)}}


def absolute_limits(req: ApiRequest, usage: dict[str, int]) -> dict[str, int]:
    """The limits and usage a microversion shows (2.36 drops network ones, 2.39
    maxImageMeta, 2.57 personality)."""
    def shown(gone_in: str | None) -> bool:
        return gone_in is None or not req.at_least(gone_in)

    result = {name: DEFAULT_QUOTAS[quota] for name, quota, gone in _ABSOLUTE if shown(gone)}
    result.update({name: usage[key] for name, key, gone in _USED if shown(gone)})
    return result
