"""Identity records as Keystone v3 shapes them, with their links."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest
from novalet.common import timeutils
from novalet.db.identity import Assignment
from novalet.db.models import ApplicationCredential, Domain, Group, Project, Role, User
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


def domain_ref(domain_id: str, name: str | None) -> dict[str, str]:
    return {"id": domain_id, "name": name or domain_id}


def user(req: ApiRequest, record: User) -> dict[str, Any]:
    body: dict[str, Any] = {
        **(record.extra or {}),
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


def group(req: ApiRequest, record: Group) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "domain_id": record.domain_id,
            "description": record.description,
            "links": {"self": f"{base_url(req)}/groups/{record.id}"}}


def assignment(req: ApiRequest, a: Assignment, via_group: str | None,
               names: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """One row of /v3/role_assignments; `names` (records by kind and id) adds names
    as ?include_names asks. A row that an effective listing derived from a group
    assignment links to that assignment and to the membership."""
    base = base_url(req)
    actor: dict[str, Any] = {"id": a.actor_id}
    target: dict[str, Any] = {"all": True} if a.scope == "system" else {"id": a.target_id}
    role_ref: dict[str, Any] = {"id": a.role_id}
    if names is not None:
        _name(actor, names[a.actor].get(a.actor_id), names)
        if a.scope == "project":
            _name(target, names["project"].get(a.target_id), names)
        elif a.scope == "domain":
            record = names["domain"].get(a.target_id)
            target["name"] = record.name if record else a.target_id
        role_record = names["role"].get(a.role_id)
        role_ref["name"] = role_record.name if role_record else a.role_id
    where = "system" if a.scope == "system" else f"{a.scope}s/{a.target_id}"
    actor_kind, actor_id = ("groups", via_group) if via_group else (f"{a.actor}s",
                                                                     a.actor_id)
    links = {"assignment": f"{base}/{where}/{actor_kind}/{actor_id}/roles/{a.role_id}"}
    if via_group:
        links["membership"] = f"{base}/groups/{via_group}/users/{a.actor_id}"
    return {a.actor: actor, "scope": {a.scope: target}, "role": role_ref, "links": links}


def _name(ref: dict[str, Any], record: Any, names: dict[str, dict[str, Any]]) -> None:
    """Add a user's, group's or project's name and domain to its reference."""
    if record is None:
        return
    domain_record = names["domain"].get(record.domain_id)
    ref.update(name=record.name, domain=domain_ref(
        record.domain_id, domain_record.name if domain_record else None))


def app_cred(req: ApiRequest, record: ApplicationCredential, secret: str | None = None
             ) -> dict[str, Any]:
    """An application credential; its secret only when just created."""
    body: dict[str, Any] = {
        "id": record.id, "name": record.name, "description": record.description,
        "user_id": record.user_id, "project_id": record.project_id,
        "expires_at": (timeutils.isotime_micro(record.expires_at)
                       if record.expires_at else None),
        "unrestricted": record.unrestricted, "roles": record.roles, "access_rules": [],
        "links": {"self": f"{base_url(req)}/users/{record.user_id}/"
                          f"application_credentials/{record.id}"}}
    if secret is not None:
        body["secret"] = secret
    return body


def token(data: TokenData, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    """{"token": {...}}; project- and system-scoped tokens carry roles and (unless
    None) the catalog."""
    body: dict[str, Any] = {
        "methods": data.methods,
        "user": {"id": data.user_id, "name": data.user_name,
                 "domain": domain_ref(data.user_domain_id, data.user_domain_name),
                 "password_expires_at": None},
        "audit_ids": [data.audit_id], "expires_at": data.expires_at,
        "issued_at": data.issued_at}
    if data.system is not None:
        body["system"] = {data.system: True}
        body["roles"] = data.roles
        if catalog is not None:
            body["catalog"] = catalog
    if data.project_id is not None:
        body["project"] = {"id": data.project_id, "name": data.project_name,
                           "domain": domain_ref(data.project_domain_id or "default",
                                                data.project_domain_name)}
        body["is_domain"] = False
        body["roles"] = data.roles
        if catalog is not None:
            body["catalog"] = catalog
    if data.app_cred_id is not None:
        body["application_credential"] = {"id": data.app_cred_id}
    return {"token": body}
