"""Identity records as Keystone v3 shapes them, with their links."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest
from novalet.db.models import Project, Role, User
from novalet.identity.api import Domain, domain_name
from novalet.identity.tokens import TokenData


def base_url(req: ApiRequest) -> str:
    """Where the v3 API lives as clients see it."""
    return f"{req.app.conf.public_url}/identity/v3"


def request_url(req: ApiRequest) -> str:
    url = req.app.conf.public_url + req.raw.url.path
    return f"{url}?{req.raw.url.query}" if req.raw.url.query else url


def collection(req: ApiRequest, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A Keystone list: the items and the links of this (only) page."""
    return {key: items, "links": {"self": request_url(req), "previous": None, "next": None}}


def domain_ref(domain_id: str) -> dict[str, str]:
    return {"id": domain_id, "name": domain_name(domain_id)}


def user(req: ApiRequest, record: User) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id, "name": record.name, "domain_id": record.domain_id,
        "enabled": record.enabled, "password_expires_at": None, "options": {},
        "links": {"self": f"{base_url(req)}/users/{record.id}"}}
    if record.default_project_id:
        body["default_project_id"] = record.default_project_id
    if record.email:
        body["email"] = record.email
    return body


def project(req: ApiRequest, record: Project) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "domain_id": record.domain_id,
            "description": record.description, "enabled": record.enabled,
            "is_domain": False, "parent_id": record.domain_id, "tags": [], "options": {},
            "links": {"self": f"{base_url(req)}/projects/{record.id}"}}


def role(req: ApiRequest, record: Role) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "domain_id": None, "description": None,
            "options": {}, "links": {"self": f"{base_url(req)}/roles/{record.id}"}}


def domain(req: ApiRequest, record: Domain) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "description": record.description,
            "enabled": record.enabled, "tags": [], "options": {},
            "links": {"self": f"{base_url(req)}/domains/{record.id}"}}


def assignment(req: ApiRequest, who: User, where: Project, what: Role, names: bool
               ) -> dict[str, Any]:
    """One row of /v3/role_assignments; `names` adds names as include_names asks."""
    link = f"{base_url(req)}/projects/{where.id}/users/{who.id}/roles/{what.id}"
    user_ref: dict[str, Any] = {"id": who.id}
    project_ref: dict[str, Any] = {"id": where.id}
    role_ref: dict[str, Any] = {"id": what.id}
    if names:
        user_ref.update(name=who.name, domain=domain_ref(who.domain_id))
        project_ref.update(name=where.name, domain=domain_ref(where.domain_id))
        role_ref["name"] = what.name
    return {"user": user_ref, "scope": {"project": project_ref}, "role": role_ref,
            "links": {"assignment": link}}


def token(data: TokenData, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    """{"token": {...}}; scoped tokens carry project, roles and (unless None) the catalog."""
    body: dict[str, Any] = {
        "methods": data.methods,
        "user": {"id": data.user_id, "name": data.user_name,
                 "domain": domain_ref(data.user_domain_id), "password_expires_at": None},
        "audit_ids": [data.audit_id], "expires_at": data.expires_at,
        "issued_at": data.issued_at}
    if data.project_id is not None:
        body["project"] = {"id": data.project_id, "name": data.project_name,
                           "domain": domain_ref(data.project_domain_id or "default")}
        body["is_domain"] = False
        body["roles"] = data.roles
        if catalog is not None:
            body["catalog"] = catalog
    return {"token": body}
