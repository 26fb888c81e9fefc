"""Role assignments: /v3/projects/{p}/users/{u}/roles[/{r}] and /v3/role_assignments."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, params, views

# Filters naming assignments this cloud never has (groups, domains, system scope,
# inheritance): a query using one matches nothing.
_NEVER_MATCHED = ("group.id", "scope.domain.id", "scope.system",
                  "scope.OS-INHERIT:inherited_to")


def _ids(req: ApiRequest) -> tuple[str, str, str]:
    return req.path["project_id"], req.path["user_id"], req.path["role_id"]


async def grant(req: ApiRequest) -> Reply:
    """PUT: give the role (idempotent), 204."""
    access.require_admin(req)
    project_id, user_id, role_id = _ids(req)
    await req.app.identity.grant(user_id, project_id, role_id)
    return Reply(None, 204)


async def check(req: ApiRequest) -> Reply:
    """HEAD: 204 when the user holds the role on the project, else 404."""
    access.require_admin(req)
    project_id, user_id, role_id = _ids(req)
    await req.app.identity.check_grant(user_id, project_id, role_id)
    return Reply(None, 204)


async def revoke(req: ApiRequest) -> Reply:
    access.require_admin(req)
    project_id, user_id, role_id = _ids(req)
    await req.app.identity.revoke(user_id, project_id, role_id)
    return Reply(None, 204)


async def roles_on_project(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/projects/{p}/users/{u}/roles."""
    access.require_admin(req)
    found = await req.app.identity.roles_on_project(req.path["user_id"],
                                                    req.path["project_id"])
    return views.collection(req, "roles", [views.role(req, r) for r in found])


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/role_assignments, filtered by user.id, scope.project.id, role.id;
    ?include_names adds names. Every assignment here is direct, so ?effective
    changes nothing."""
    access.require_admin(req)
    if any(name in req.query for name in _NEVER_MATCHED):
        return views.collection(req, "role_assignments", [])
    grants = await req.app.identity.list_grants(
        user_id=req.query.get("user.id"), project_id=req.query.get("scope.project.id"),
        role_id=req.query.get("role.id"))
    names = params.flag(req.query, "include_names")
    return views.collection(req, "role_assignments",
                            [views.assignment(req, who, where, what, names)
                             for who, where, what in grants])
