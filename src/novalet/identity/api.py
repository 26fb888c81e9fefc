"""The identity service: users, projects, roles and grants, and the tokens that carry them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from novalet import config, exceptions
from novalet.db import identity as records
from novalet.db.engine import Database
from novalet.db.models import Project, Role, User
from novalet.identity import passwords
from novalet.identity.tokens import TokenData, TokenNotFound, TokenNotValid, TokenProvider

LOG = logging.getLogger(__name__)
T = TypeVar("T")

BOOTSTRAP_ROLES = ("admin", "member", "reader")
ADMIN_ROLES = ("admin", "member", "reader")
DEMO_ROLES = ("member", "reader")
INTERFACES = ("public", "internal", "admin")
# (type, name, path under the public URL) of every service in the catalog. The
# identity URL is versioned, as Keystone's own install guide registers it: clients
# (keystoneauth) then use it directly instead of redirecting to /identity/ and
# reading its 300 Multiple Choices before every identity call.
SERVICES = (("identity", "keystone", "/identity/v3"),
            ("compute", "nova", "/compute/v2.1"),
            ("image", "glance", "/image"))
_CATALOG_NAMESPACE = uuid.UUID("5b0b6c1e-4a8e-4a53-9a3c-2d3f7f1f7a10")


class AuthenticationFailed(exceptions.Unauthorized):
    """Deliberately vague: the reason is logged, never told to the caller."""

    msg_fmt = "The request you have made requires authentication."


class MalformedAuthRequest(exceptions.Invalid):
    msg_fmt = "Invalid authentication request: %(reason)s"


class DomainNotFound(exceptions.NotFound):
    msg_fmt = "Could not find domain: %(domain_id)s."


class UnknownReference(exceptions.Invalid):
    msg_fmt = "%(field)s %(value)s does not exist%(hint)s."


class Unsupported(exceptions.Invalid):
    msg_fmt = "%(what)s is not supported by this cloud."


@dataclass(frozen=True)
class Domain:
    id: str
    name: str
    description: str
    enabled: bool = True


DEFAULT_DOMAIN = Domain("default", "Default", "The default domain")
DOMAINS = {DEFAULT_DOMAIN.id: DEFAULT_DOMAIN}


def domain_name(domain_id: str) -> str:
    domain = DOMAINS.get(domain_id)
    return domain.name if domain else domain_id


def new_id() -> str:
    return uuid.uuid4().hex


class IdentityService:
    """Identity records live in the database; tokens carry the user, scope and roles
    sealed inside them, so checking a token needs no database read."""

    def __init__(self, db: Database, tokens: TokenProvider, conf: config.Config) -> None:
        self.db = db
        self.tokens = tokens
        self.conf = conf

    # --- first start ----------------------------------------------------------

    async def bootstrap(self, *, admin_password: str, demo_password: str) -> bool:
        """Make the roles, the admin and demo projects and users, and their grants.
        Idempotent; True only when something was created. Existing passwords stay."""
        created = False
        for name in BOOTSTRAP_ROLES:
            created |= (await self._ensure_role(name))[1]
        for user_name, password, role_names in (("admin", admin_password, ADMIN_ROLES),
                                                ("demo", demo_password, DEMO_ROLES)):
            created |= await self._ensure_member(user_name, user_name, password, role_names)
        return created

    async def bootstrap_service_user(self, name: str, project: str, password: str) -> bool:
        """The user services (compute hosts) authenticate as, admin on `project`.
        Its password is set to `password` every time, so config and record agree."""
        created = await self._ensure_member(name, project, password, ("admin",))
        user = await records.find_user(self.db, name, DEFAULT_DOMAIN.id)
        assert user is not None
        await self.update_user(user.id, {"password": password})
        return created

    async def _ensure_member(self, name: str, project_name: str, password: str,
                             role_names: tuple[str, ...]) -> bool:
        """A project and a user, the user holding `role_names` on the project."""
        project, new_project = await _ensure(
            lambda: records.find_project(self.db, project_name, DEFAULT_DOMAIN.id),
            lambda: self.create_project({"name": project_name,
                                         "description": f"Bootstrap {project_name}"}))
        user, new_user = await _ensure(
            lambda: records.find_user(self.db, name, DEFAULT_DOMAIN.id),
            lambda: self.create_user({"name": name, "password": password,
                                      "default_project_id": project.id}))
        created = new_project or new_user
        for role_name in role_names:
            role, _ = await self._ensure_role(role_name)
            created |= await records.grant(self.db, user.id, project.id, role.id)
        return created

    async def _ensure_role(self, name: str) -> tuple[Role, bool]:
        return await _ensure(lambda: self.find_role(name), lambda: self.create_role(name))

    # --- tokens -----------------------------------------------------------------

    async def authenticate(self, body: Mapping[str, Any]) -> tuple[str, TokenData]:
        """Issue a token for a Keystone `{"auth": {...}}` request (already schema-checked):
        identity by the password or token method, scope by project or none."""
        auth = body["auth"]
        identity = auth["identity"]
        methods = list(identity["methods"])
        parent: TokenData | None = None
        if methods == ["password"]:
            user = await self._password_user(identity.get("password"))
        elif methods == ["token"]:
            user, parent = await self._token_user(identity.get("token"))
            methods = list(dict.fromkeys(["token", *parent.methods]))
        else:
            raise _denied(f"methods {methods} are not supported; use password or token")
        project, roles = await self._scope(user, auth.get("scope"), parent is None)
        return self.tokens.issue(
            parent, user_id=user.id, user_name=user.name, user_domain_id=user.domain_id,
            project_id=project.id if project else None,
            project_name=project.name if project else None,
            project_domain_id=project.domain_id if project else None,
            roles=[{"id": r.id, "name": r.name} for r in roles], methods=methods)

    def validate_subject_token(self, token_id: str) -> TokenData:
        """The payload of a token being checked; TokenNotFound (404) when it is not valid."""
        try:
            return self.tokens.validate(token_id)
        except TokenNotValid:
            raise TokenNotFound(token=token_id) from None

    async def _password_user(self, method: Any) -> User:
        if not isinstance(method, dict) or not isinstance(method.get("user"), dict):
            raise MalformedAuthRequest(reason="the password method needs a 'password' "
                                       "object holding a 'user'")
        spec = method["user"]
        user = await self._find_auth_user(spec)
        if user is None or not user.enabled:
            raise _denied(f"user {spec.get('id') or spec.get('name')} is unknown or disabled")
        if not await asyncio.to_thread(passwords.check_password, spec["password"],
                                       user.password_hash):
            raise _denied(f"wrong password for user {user.id}")
        return user

    async def _find_auth_user(self, spec: Mapping[str, Any]) -> User | None:
        if "id" in spec:
            return await _or_none(records.get_user(self.db, spec["id"]))
        if "name" not in spec:
            raise MalformedAuthRequest(reason="the user needs an 'id', or a 'name' "
                                       "and a 'domain'")
        return await records.find_user(self.db, spec["name"],
                                       self._auth_domain(spec.get("domain"), "user"))

    async def _token_user(self, method: Any) -> tuple[User, TokenData]:
        if not isinstance(method, dict) or not isinstance(method.get("id"), str):
            raise MalformedAuthRequest(reason="the token method needs a 'token' object "
                                       "holding an 'id'")
        parent = self.tokens.validate(method["id"])
        user = await _or_none(records.get_user(self.db, parent.user_id))
        if user is None or not user.enabled:
            raise _denied(f"user {parent.user_id} of the token is gone or disabled")
        return user, parent

    async def _scope(self, user: User, scope: Any, by_password: bool
                     ) -> tuple[Project | None, list[Role]]:
        """The project a new token is scoped to and the user's roles there."""
        if scope == "unscoped":
            return None, []
        if scope is None:
            return await self._default_scope(user) if by_password else (None, [])
        if not isinstance(scope, dict) or "project" not in scope:
            raise _denied(f"scope {scope!r} is not supported; only projects are")
        project = await self._find_scope_project(scope["project"])
        if project is None or not project.enabled:
            raise _denied(f"project {scope['project']} is unknown or disabled")
        roles = await records.roles_on_project(self.db, user.id, project.id)
        if not roles:
            raise _denied(f"user {user.id} has no role on project {project.id}")
        return project, roles

    async def _default_scope(self, user: User) -> tuple[Project | None, list[Role]]:
        """Keystone scopes a request without a scope to the user's default project,
        when the user may use it; otherwise the token is unscoped."""
        if not user.default_project_id:
            return None, []
        project = await _or_none(records.get_project(self.db, user.default_project_id))
        if project is None or not project.enabled:
            return None, []
        roles = await records.roles_on_project(self.db, user.id, project.id)
        return (project, roles) if roles else (None, [])

    async def _find_scope_project(self, spec: Any) -> Project | None:
        if not isinstance(spec, dict) or not ("id" in spec or "name" in spec):
            raise MalformedAuthRequest(reason="the project scope needs an 'id', or a "
                                       "'name' and a 'domain'")
        if "id" in spec:
            return await _or_none(records.get_project(self.db, spec["id"]))
        return await records.find_project(self.db, spec["name"],
                                          self._auth_domain(spec.get("domain"), "project"))

    @staticmethod
    def _auth_domain(ref: Any, owner: str) -> str:
        if not isinstance(ref, dict) or not ("id" in ref or "name" in ref):
            raise MalformedAuthRequest(reason=f"Expecting to find domain in {owner}")
        for domain in DOMAINS.values():
            if ref.get("id", domain.id) == domain.id and (
                    ref.get("name", domain.name) == domain.name):
                return domain.id
        raise _denied(f"domain {ref} is unknown")

    # --- catalog ----------------------------------------------------------------

    def catalog(self, public_url: str) -> list[dict[str, Any]]:
        """Keystone's catalog of the services this server hosts under `public_url`.
        Ids are derived from names, so they stay the same across restarts."""
        region = self.conf.get("identity", "region")
        return [{"id": _stable_id(kind), "type": kind, "name": name,
                 "endpoints": [{"id": _stable_id(kind, interface), "interface": interface,
                                "region": region, "region_id": region,
                                "url": public_url + path} for interface in INTERFACES]}
                for kind, name, path in SERVICES]

    # --- domains ----------------------------------------------------------------

    def get_domain(self, domain_id: str) -> Domain:
        if domain_id not in DOMAINS:
            raise DomainNotFound(domain_id=domain_id)
        return DOMAINS[domain_id]

    def list_domains(self, *, name: str | None = None, enabled: bool | None = None
                     ) -> list[Domain]:
        return [d for d in DOMAINS.values()
                if name in (None, d.name) and enabled in (None, d.enabled)]

    # --- projects ---------------------------------------------------------------

    async def get_project(self, project_id: str) -> Project:
        """The project; ProjectNotFound (404) when there is none with that id."""
        return await records.get_project(self.db, project_id)

    async def list_projects(self, *, name: str | None = None, domain_id: str | None = None,
                            enabled: bool | None = None) -> list[Project]:
        return await records.list_projects(self.db, name=name, domain_id=domain_id,
                                           enabled=enabled)

    async def create_project(self, fields: Mapping[str, Any]) -> Project:
        """fields: name, and optionally description, domain_id, enabled, parent_id."""
        domain_id = self._known_domain(fields.get("domain_id"))
        if fields.get("parent_id") not in (None, domain_id):
            raise Unsupported(what="A project hierarchy (parent_id other than the domain)")
        if fields.get("is_domain"):
            raise Unsupported(what="A project acting as a domain (is_domain true)")
        return await records.create_project(self.db, {
            "id": new_id(), "name": fields["name"], "domain_id": domain_id,
            "description": fields.get("description") or "",
            "enabled": fields.get("enabled", True)})

    async def update_project(self, project_id: str, fields: Mapping[str, Any]) -> Project:
        """fields: any of name, description, enabled."""
        changes = {k: fields[k] for k in ("name", "enabled") if k in fields}
        if "description" in fields:
            changes["description"] = fields["description"] or ""
        return await records.update_project(self.db, project_id, changes)

    async def delete_project(self, project_id: str) -> None:
        """Remove the project and every grant on it."""
        await records.delete_project(self.db, project_id)

    async def projects_of_user(self, user_id: str, *, enabled_only: bool = False
                               ) -> list[Project]:
        """Projects where the user holds a role; UserNotFound when there is no such user."""
        await records.get_user(self.db, user_id)
        projects = await records.projects_of_user(self.db, user_id)
        return [p for p in projects if p.enabled or not enabled_only]

    # --- users ------------------------------------------------------------------

    async def get_user(self, user_id: str) -> User:
        return await records.get_user(self.db, user_id)

    async def list_users(self, *, name: str | None = None, domain_id: str | None = None,
                         enabled: bool | None = None) -> list[User]:
        return await records.list_users(self.db, name=name, domain_id=domain_id,
                                        enabled=enabled)

    async def create_user(self, fields: Mapping[str, Any]) -> User:
        """fields: name, and optionally password, domain_id, enabled,
        default_project_id, email. The password is stored only as a hash."""
        values = {"id": new_id(), "name": fields["name"],
                  "domain_id": self._known_domain(fields.get("domain_id")),
                  "enabled": fields.get("enabled", True),
                  "email": fields.get("email"),
                  "default_project_id": await self._known_project(
                      fields.get("default_project_id")),
                  "password_hash": await _hash(fields.get("password"))}
        return await records.create_user(self.db, values)

    async def update_user(self, user_id: str, fields: Mapping[str, Any]) -> User:
        """fields: any of name, password, enabled, default_project_id, email."""
        changes = {k: fields[k] for k in ("name", "enabled", "email") if k in fields}
        if "default_project_id" in fields:
            changes["default_project_id"] = await self._known_project(
                fields["default_project_id"])
        if "password" in fields:
            changes["password_hash"] = await _hash(fields["password"])
        return await records.update_user(self.db, user_id, changes)

    async def change_password(self, user_id: str, original: str, password: str) -> None:
        """A user changing their own password; AuthenticationFailed when the original
        is wrong."""
        user = await records.get_user(self.db, user_id)
        if not await asyncio.to_thread(passwords.check_password, original,
                                       user.password_hash):
            raise _denied(f"wrong original password for user {user_id}")
        await records.update_user(self.db, user_id, {"password_hash": await _hash(password)})

    async def delete_user(self, user_id: str) -> None:
        """Remove the user and every grant they hold."""
        await records.delete_user(self.db, user_id)

    # --- roles and grants -------------------------------------------------------

    async def get_role(self, role_id: str) -> Role:
        return await records.get_role(self.db, role_id)

    async def find_role(self, name: str) -> Role | None:
        roles = await records.list_roles(self.db, name=name)
        return roles[0] if roles else None

    async def list_roles(self, *, name: str | None = None) -> list[Role]:
        return await records.list_roles(self.db, name=name)

    async def create_role(self, name: str) -> Role:
        return await records.create_role(self.db, new_id(), name)

    async def delete_role(self, role_id: str) -> None:
        """Remove the role and every grant of it. Tokens already issued keep it until
        they expire."""
        await records.delete_role(self.db, role_id)

    async def grant(self, user_id: str, project_id: str, role_id: str) -> bool:
        """Give the role; idempotent, True when the user did not hold it yet."""
        return await records.grant(self.db, user_id, project_id, role_id)

    async def check_grant(self, user_id: str, project_id: str, role_id: str) -> None:
        """AssignmentNotFound unless the user holds the role on the project."""
        if not await records.has_grant(self.db, user_id, project_id, role_id):
            raise records.AssignmentNotFound(user_id=user_id, project_id=project_id,
                                             role_id=role_id)

    async def revoke(self, user_id: str, project_id: str, role_id: str) -> None:
        await records.revoke(self.db, user_id, project_id, role_id)

    async def roles_on_project(self, user_id: str, project_id: str) -> list[Role]:
        await records.get_user(self.db, user_id)
        await records.get_project(self.db, project_id)
        return await records.roles_on_project(self.db, user_id, project_id)

    async def list_grants(self, *, user_id: str | None = None,
                          project_id: str | None = None,
                          role_id: str | None = None) -> list[records.Grant]:
        return await records.list_grants(self.db, user_id=user_id, project_id=project_id,
                                         role_id=role_id)

    # --- checks on references in request bodies ---------------------------------

    def _known_domain(self, domain_id: str | None) -> str:
        if domain_id is None:
            return DEFAULT_DOMAIN.id
        if domain_id not in DOMAINS:
            raise UnknownReference(field="Domain", value=domain_id,
                                   hint="; this cloud has only the domain 'default'")
        return domain_id

    async def _known_project(self, project_id: str | None) -> str | None:
        if project_id is not None and await _or_none(
                records.get_project(self.db, project_id)) is None:
            raise UnknownReference(field="Project", value=project_id, hint="")
        return project_id


def _denied(reason: str) -> AuthenticationFailed:
    LOG.info("Authentication refused: %s", reason)
    return AuthenticationFailed()


async def _or_none(lookup: Awaitable[T]) -> T | None:
    """The record, or None where the lookup raises its NotFound."""
    try:
        return await lookup
    except exceptions.NotFound:
        return None


async def _ensure(find: Callable[[], Awaitable[T | None]],
                  create: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
    """(record, created): the existing record, else a new one. A concurrent creator
    winning the race counts as existing."""
    found = await find()
    if found is not None:
        return found, False
    try:
        return await create(), True
    except exceptions.Conflict:
        found = await find()
        if found is None:
            raise
        return found, False


async def _hash(password: str | None) -> str | None:
    """scrypt is deliberately slow, so it runs off the event loop."""
    if password is None:
        return None
    return await asyncio.to_thread(passwords.hash_password, password)


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(_CATALOG_NAMESPACE, "/".join(parts)).hex
