"""The identity API's one route table (mounted at /identity): a Keystone v3 subset."""

from __future__ import annotations

from starlette.routing import Route

from novalet.api.handler import IDENTITY, Handler, endpoint
from novalet.api.identity import (
    assignments,
    auth,
    catalog,
    domains,
    projects,
    roles,
    users,
    versions,
)


def _r(path: str, methods: list[str], handler: Handler, scoped: bool = True) -> Route:
    """scoped: a project-scoped token is required. Otherwise the handler decides, so
    unscoped tokens reach what concerns the caller themselves."""
    return Route(path, endpoint(IDENTITY, handler, auth=scoped), methods=methods)


V = "/v3"
GRANT = V + "/projects/{project_id}/users/{user_id}/roles/{role_id}"
ROUTES = [
    _r("/", ["GET"], versions.index, scoped=False),
    _r(V, ["GET"], versions.show, scoped=False),
    _r(V + "/", ["GET"], versions.show, scoped=False),
    # tokens (GET also answers HEAD)
    _r(V + "/auth/tokens", ["POST"], auth.issue, scoped=False),
    _r(V + "/auth/tokens", ["GET"], auth.check, scoped=False),
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
    _r(V + "/projects/{project_id}/users/{user_id}/roles", ["GET"],
       assignments.roles_on_project),
    _r(GRANT, ["PUT"], assignments.grant),
    _r(GRANT, ["HEAD"], assignments.check),
    _r(GRANT, ["DELETE"], assignments.revoke),
    _r(V + "/role_assignments", ["GET"], assignments.index),
    # domains
    _r(V + "/domains", ["GET"], domains.index, scoped=False),
    _r(V + "/domains/{domain_id}", ["GET"], domains.show, scoped=False),
    # the catalog, read-only
    _r(V + "/services", ["GET"], catalog.list_services),
    _r(V + "/services/{service_id}", ["GET"], catalog.show_service),
    _r(V + "/endpoints", ["GET"], catalog.list_endpoints),
    _r(V + "/endpoints/{endpoint_id}", ["GET"], catalog.show_endpoint),
    _r(V + "/regions", ["GET"], catalog.list_regions, scoped=False),
    _r(V + "/regions/{region_id}", ["GET"], catalog.show_region, scoped=False),
]
