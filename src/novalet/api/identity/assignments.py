"""Role assignments of users and groups on projects, domains and the system, and
/v3/role_assignments. The path names who and where: /v3/{projects/{p}|domains/{d}|system}
/{users/{u}|groups/{g}}/roles[/{r}]."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, params, views
from novalet.db.identity import SYSTEM, Assignment

# Filters this cloud has nothing for (inherited assignments): a query using one
# matches nothing.
_NEVER_MATCHED = ("scope.OS-INHERIT:inherited_to",)


def _assignment(req: ApiRequest) -> Assignment:
    actor, actor_id = (("user", req.path["user_id"]) if "user_id" in req.path
                       else ("group", req.path["group_id"]))
    if "project_id" in req.path:
        scope, target = "project", req.path["project_id"]
    elif "domain_id" in req.path:
        scope, target = "domain", req.path["domain_id"]
    else:
        scope, target = "system", SYSTEM
    return Assignment(actor, actor_id, scope, target, req.path.get("role_id", ""))


async def grant(req: ApiRequest) -> Reply:
    """PUT: give the role (idempotent), 204."""
    access.require_admin(req)
    await req.app.identity.assign(_assignment(req))
    return Reply(None, 204)


async def check(req: ApiRequest) -> Reply:
    """HEAD (and GET on the system paths): 204 when the role is held, else 404."""
    access.require_admin(req)
    await req.app.identity.check_assignment(_assignment(req))
    return Reply(None, 204)


async def revoke(req: ApiRequest) -> Reply:
    """DELETE: take the role away; tokens that may carry it are revoked."""
    access.require_admin(req)
    await req.app.identity.unassign(_assignment(req))
    return Reply(None, 204)


async def roles_held(req: ApiRequest) -> dict[str, Any]:
    """GET .../roles: the roles the user or group holds there directly."""
    access.require_admin(req)
    a = _assignment(req)
    if a.kind == "UserProject":
        found = await req.app.identity.roles_on_project(a.actor_id, a.target_id)
    else:
        found = await req.app.identity.roles_of(a)
    return views.collection(req, "roles", [views.role(req, r) for r in found])


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/role_assignments, filtered by user.id, group.id, scope.project.id,
    scope.domain.id, scope.system, role.id; ?effective expands groups into their
    members and adds implied roles; ?include_names adds names."""
    access.require_admin(req)
    if any(name in req.query for name in _NEVER_MATCHED):
        return views.collection(req, "role_assignments", [])
    effective = params.flag(req.query, "effective")
    rows = await req.app.identity.list_assignments(effective=effective)
    q = req.query
    wanted: list[tuple[str, str | None]] = [
        ("user", q.get("user.id")), ("group", q.get("group.id"))]
    scopes = [("project", q.get("scope.project.id")), ("domain", q.get("scope.domain.id")),
              ("system", SYSTEM if "scope.system" in q else None)]

    def keep(a: Assignment, via: str | None) -> bool:
        for actor, actor_id in wanted:
            if actor_id is None:
                continue
            if actor == "group" and effective:
                if via != actor_id:
                    return False
            elif (a.actor, a.actor_id) != (actor, actor_id):
                return False
        return (all(target is None or (a.scope, a.target_id) == (scope, target)
                    for scope, target in scopes)
                and q.get("role.id") in (None, a.role_id))

    found = [(a, via) for a, via in rows if keep(a, via)]
    names = (await req.app.identity.records_for([a for a, _ in found])
             if params.flag(q, "include_names") else None)
    found.sort(key=lambda row: (row[0].actor, row[0].actor_id, row[0].scope,
                                row[0].target_id, row[0].role_id))
    return views.collection(req, "role_assignments",
                            [views.assignment(req, a, via, names) for a, via in found])
