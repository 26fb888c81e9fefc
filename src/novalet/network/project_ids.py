"""The project ids the network rows can hold: one check for every owner the network
API takes from a request (a body's project_id, a quota's path)."""

from __future__ import annotations

from novalet import exceptions

# routers, networks, subnets, floating_ips, security_groups and
# auto_allocated_topologies hold a project id in String(64); Keystone's are shorter
PROJECT_ID_MAX = 64


def check_project_id(project_id: str) -> str:
    """The id when a row can hold it; else 400 (BadRequest on the network API), not
    the 500 the database would give on an over-long value."""
    if not 0 < len(project_id) <= PROJECT_ID_MAX:
        raise exceptions.Invalid(reason=(
            f"project id {project_id[:80]!r} is not valid: 1 to {PROJECT_ID_MAX} characters"))
    return project_id
