"""The identity API's one route table (mounted at /identity): a Keystone v3 subset."""

from __future__ import annotations

from starlette.routing import Route

from novalet.api.handler import IDENTITY, Handler, endpoint
from novalet.api.identity import (
    app_creds,
    assignments,
    auth,
    catalog,
    domains,
    groups,
    projects,
    roles,
    users,
    versions,
)


def _r(path: str, methods: list[str], handler: Handler, scoped: bool = True) -> Route:
    """scoped: a project- or system-scoped token is required. Otherwise the handler decides, so
    unscoped tokens reach what concerns the caller themselves."""
    return Route(path, endpoint(IDENTITY, handler, auth=scoped), methods=methods)


V = "/v3"
# Where roles are held (project, domain, system) and by whom (user, group).
_TARGETS = ("/projects/{project_id}", "/domains/{domain_id}", "/system")
_ACTORS = ("/users/{user_id}", "/groups/{group_id}")


def _assignment_routes() -> list[Route]:
    found = []
    for target in _TARGETS:
        for actor in _ACTORS:
            roles = V + target + actor + "/roles"
            found += [_r(roles, ["GET"], assignments.roles_held),
                      _r(roles + "/{role_id}", ["PUT"], assignments.grant),
                      _r(roles + "/{role_id}", ["HEAD"], assignments.check),
                      _r(roles + "/{role_id}", ["DELETE"], assignments.revoke)]
            if target == "/system":  # Keystone checks system roles with GET too
                found.append(_r(roles + "/{role_id}", ["GET"], assignments.check))
    return found


APP_CREDS = V + "/users/{user_id}/application_credentials"
ROUTES = [
    _r("/", ["GET"], versions.index, scoped=False),
    _r(V, ["GET"], versions.show, scoped=False),
    _r(V + "/", ["GET"], versions.show, scoped=False),
    # tokens (GET also answers HEAD)
    _r(V + "/auth/tokens", ["POST"], auth.issue, scoped=False),
    _r(V + "/auth/tokens", ["GET"], auth.check, scoped=False),
    _r(V + "/auth/tokens", ["DELETE"], auth.revoke, scoped=False),
    _r(V + "/auth/catalog", ["GET"], auth.catalog, scoped=False),
    _r(V + "/auth/projects", ["GET"], auth.projects, scoped=False),
    # users
    _r(V + "/users", ["GET"], users.index),
    _r(V + "/users", ["POST"], users.create),
    _r(V + "/users/{user_id}", ["GET"], users.show, scoped=False),
    _r(V + "/users/{user_id}", ["PATCH"], users.update),
    _r(V + "/users/{user_id}", ["DELETE"], users.delete),
    _r(V + "/users/{user_id}/projects", ["GET"], users.projects, scoped=False),
    _r(V + "/users/{user_id}/password", ["POST"], users.change_password, scoped=False),
    _r(V + "/users/{user_id}/groups", ["GET"], groups.of_user, scoped=False),
    # application credentials: their owner, with any token (creating takes a project)
    _r(APP_CREDS, ["GET"], app_creds.index, scoped=False),
    _r(APP_CREDS, ["POST"], app_creds.create, scoped=False),
    _r(APP_CREDS + "/{app_cred_id}", ["GET"], app_creds.show, scoped=False),
    _r(APP_CREDS + "/{app_cred_id}", ["DELETE"], app_creds.delete, scoped=False),
    # groups and their members
    _r(V + "/groups", ["GET"], groups.index),
    _r(V + "/groups", ["POST"], groups.create),
    _r(V + "/groups/{group_id}", ["GET"], groups.show),
    _r(V + "/groups/{group_id}", ["PATCH"], groups.update),
    _r(V + "/groups/{group_id}", ["DELETE"], groups.delete),
    _r(V + "/groups/{group_id}/users", ["GET"], groups.members),
    _r(V + "/groups/{group_id}/users/{user_id}", ["PUT"], groups.add_member),
    _r(V + "/groups/{group_id}/users/{user_id}", ["HEAD"], groups.check_member),
    _r(V + "/groups/{group_id}/users/{user_id}", ["DELETE"], groups.remove_member),
    # projects
    _r(V + "/projects", ["GET"], projects.index),
    _r(V + "/projects", ["POST"], projects.create),
    _r(V + "/projects/{project_id}", ["GET"], projects.show, scoped=False),
    _r(V + "/projects/{project_id}", ["PATCH"], projects.update),
    _r(V + "/projects/{project_id}", ["DELETE"], projects.delete),
    # roles and who holds them
    _r(V + "/roles", ["GET"], roles.index),
    _r(V + "/roles", ["POST"], roles.create),
    _r(V + "/roles/{role_id}", ["GET"], roles.show),
    _r(V + "/roles/{role_id}", ["DELETE"], roles.delete),
    *_assignment_routes(),
    _r(V + "/role_assignments", ["GET"], assignments.index),
    # domains
    _r(V + "/domains", ["GET"], domains.index, scoped=False),
    _r(V + "/domains", ["POST"], domains.create),
    _r(V + "/domains/{domain_id}", ["GET"], domains.show, scoped=False),
    _r(V + "/domains/{domain_id}", ["PATCH"], domains.update),
    _r(V + "/domains/{domain_id}", ["DELETE"], domains.delete),
    # the catalog, read-only
    _r(V + "/services", ["GET"], catalog.list_services),
    _r(V + "/services/{service_id}", ["GET"], catalog.show_service),
    _r(V + "/endpoints", ["GET"], catalog.list_endpoints),
    _r(V + "/endpoints/{endpoint_id}", ["GET"], catalog.show_endpoint),
    _r(V + "/regions", ["GET"], catalog.list_regions, scoped=False),
    _r(V + "/regions/{region_id}", ["GET"], catalog.show_region, scoped=False),
]
