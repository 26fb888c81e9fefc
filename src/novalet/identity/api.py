"""The identity service: domains, users, groups, projects, roles and assignments,
application credentials, and the tokens that carry them (and their revocation)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from novalet import config, exceptions
from novalet.common import timeutils
from novalet.db import identity as records
from novalet.db.engine import Database
from novalet.db.identity import SYSTEM, Assignment
from novalet.db.models import ApplicationCredential, Domain, Group, Project, Role, User
from novalet.identity import passwords
from novalet.identity.revocations import Revocations
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
DEFAULT_DOMAIN_ID = "default"
# Keystone's bootstrap makes admin imply member and member imply reader; a token
# lists the roles held and every role they imply.
IMPLIED_ROLES = {"admin": ("member",), "member": ("reader",)}


class AuthenticationFailed(exceptions.Unauthorized):
    """Deliberately vague: the reason is logged, never told to the caller."""

    msg_fmt = "The request you have made requires authentication."


class MalformedAuthRequest(exceptions.Invalid):
    msg_fmt = "Invalid authentication request: %(reason)s"


class UnknownReference(exceptions.Invalid):
    msg_fmt = "%(field)s %(value)s does not exist%(hint)s."


class Unsupported(exceptions.Invalid):
    msg_fmt = "%(what)s is not supported by this cloud."


class DefaultDomainProtected(exceptions.Forbidden):
    msg_fmt = "The default domain can't be deleted or disabled."


class DomainStillEnabled(exceptions.Forbidden):
    msg_fmt = ("Cannot delete a domain that is enabled, please disable it first.")


class NeedsProjectScope(exceptions.Forbidden):
    msg_fmt = "Application credentials are created with a project-scoped token."


class RestrictedAppCred(exceptions.Forbidden):
    msg_fmt = ("A restricted application credential can't create or delete "
               "application credentials; use one made with unrestricted true.")


class RoleNotHeld(exceptions.Forbidden):
    msg_fmt = "The caller doesn't hold role %(role)s on the project."


class ExpiryInThePast(exceptions.Invalid):
    msg_fmt = "expires_at %(value)s is in the past."


def new_id() -> str:
    return uuid.uuid4().hex


class IdentityService:
    """Identity records live in the database; tokens carry the user, scope and roles
    sealed inside them, so checking a token needs no database read."""

    def __init__(self, db: Database, tokens: TokenProvider, conf: config.Config) -> None:
        self.db = db
        self.tokens = tokens
        self.conf = conf
        self.revocations = Revocations(db, tokens.ttl,
                                       conf.get("identity", "revocation_refresh"))

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
        user = await records.find_user(self.db, name, DEFAULT_DOMAIN_ID)
        assert user is not None
        await self.update_user(user.id, {"password": password})
        return created

    async def _ensure_member(self, name: str, project_name: str, password: str,
                             role_names: tuple[str, ...]) -> bool:
        """A project and a user, the user holding `role_names` on the project."""
        project, new_project = await _ensure(
            lambda: records.find_project(self.db, project_name, DEFAULT_DOMAIN_ID),
            lambda: self.create_project({"name": project_name,
                                         "description": f"Bootstrap {project_name}"}))
        user, new_user = await _ensure(
            lambda: records.find_user(self.db, name, DEFAULT_DOMAIN_ID),
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
        identity by the password, token or application_credential method; scope by
        project, system or none."""
        auth = body["auth"]
        identity = auth["identity"]
        methods = list(identity["methods"])
        parent: TokenData | None = None
        if methods == ["application_credential"]:
            return await self._app_cred_token(identity.get("application_credential"))
        if methods == ["password"]:
            user = await self._password_user(identity.get("password"))
        elif methods == ["token"]:
            user, parent = await self._token_user(identity.get("token"))
            methods = list(dict.fromkeys(["token", *parent.methods]))
        else:
            raise _denied(f"methods {methods} are not supported; use password, token "
                          "or application_credential")
        user_domain = await self._enabled_domain(user.domain_id)
        if isinstance(auth.get("scope"), dict) and "system" in auth["scope"]:
            system_roles = await self._system_roles(user, auth["scope"]["system"])
            return self.tokens.issue(
                parent, user_id=user.id, user_name=user.name, user_domain_id=user.domain_id,
                user_domain_name=user_domain.name, project_id=None, project_name=None,
                project_domain_id=None, system=SYSTEM, roles=system_roles,
                methods=methods)
        project, roles = await self._scope(user, auth.get("scope"), parent is None)
        project_domain = (await self._enabled_domain(project.domain_id)
                          if project else None)
        return self.tokens.issue(
            parent, user_id=user.id, user_name=user.name, user_domain_id=user.domain_id,
            user_domain_name=user_domain.name,
            project_id=project.id if project else None,
            project_name=project.name if project else None,
            project_domain_id=project.domain_id if project else None,
            project_domain_name=project_domain.name if project_domain else None,
            roles=await self._with_implied(roles), methods=methods)

    async def validate(self, token_id: str) -> TokenData:
        """The payload of a caller's token; TokenNotValid (401) when it is forged,
        expired or revoked."""
        data = self.tokens.validate(token_id)
        await self.revocations.check(data)
        return data

    async def validate_subject_token(self, token_id: str) -> TokenData:
        """The payload of a token being checked; TokenNotFound (404) when it is not valid."""
        try:
            return await self.validate(token_id)
        except TokenNotValid:
            raise TokenNotFound(token=token_id) from None

    async def revoke_token(self, token_id: str) -> None:
        """DELETE /v3/auth/tokens: revoke the token and every token made from it."""
        data = await self.validate_subject_token(token_id)
        await self.revocations.revoke(audit_id=data.audit_id)

    async def check_revocation(self, token: TokenData) -> None:
        """TokenNotValid (401) when `token` (already opened) has been revoked."""
        await self.revocations.check(token)

    async def _enabled_domain(self, domain_id: str) -> Domain:
        domain = await _or_none(records.get_domain(self.db, domain_id))
        if domain is None or not domain.enabled:
            raise _denied(f"domain {domain_id} is gone or disabled")
        return domain

    async def _with_implied(self, roles: list[Role]) -> list[dict[str, str]]:
        """The roles as a token lists them: each held role and every role it implies."""
        names = {r.name for r in roles}
        pending = list(names)
        while pending:
            for implied in IMPLIED_ROLES.get(pending.pop(), ()):
                if implied not in names:
                    names.add(implied)
                    pending.append(implied)
        if len(names) > len(roles):
            roles = [r for r in await records.list_roles(self.db) if r.name in names]
        return [{"id": r.id, "name": r.name} for r in sorted(roles, key=lambda r: r.name)]

    async def _system_roles(self, user: User, spec: Any) -> list[dict[str, str]]:
        if spec != {"all": True}:
            raise MalformedAuthRequest(reason='the system scope is {"all": true}')
        roles = await records.effective_roles(self.db, user.id, "system", SYSTEM)
        if not roles:
            raise _denied(f"user {user.id} has no role on the system")
        return await self._with_implied(roles)

    async def _app_cred_token(self, spec: Any) -> tuple[str, TokenData]:
        """A project-scoped token carrying the application credential's roles."""
        if not isinstance(spec, dict) or not isinstance(spec.get("secret"), str):
            raise MalformedAuthRequest(reason="the application_credential method needs "
                                       "an 'id', or a 'name' and a 'user', and a 'secret'")
        cred = await self._find_app_cred(spec)
        if cred is None:
            raise _denied(f"application credential {spec.get('id') or spec.get('name')} "
                          "is unknown")
        if cred.expires_at is not None and cred.expires_at <= timeutils.utcnow():
            raise _denied(f"application credential {cred.id} has expired")
        if not await asyncio.to_thread(passwords.check_password, spec["secret"],
                                       cred.secret_hash):
            raise _denied(f"wrong secret for application credential {cred.id}")
        user = await _or_none(records.get_user(self.db, cred.user_id))
        project = await _or_none(records.get_project(self.db, cred.project_id))
        if user is None or not user.enabled or project is None or not project.enabled:
            raise _denied(f"the user or project of application credential {cred.id} "
                          "is gone or disabled")
        user_domain = await self._enabled_domain(user.domain_id)
        project_domain = await self._enabled_domain(project.domain_id)
        held = {r.id for r in await records.effective_roles(
            self.db, user.id, "project", project.id)}
        held_roles = await self._with_implied(
            [r for r in await records.list_roles(self.db) if r.id in held])
        if not {r["id"] for r in cred.roles} <= {r["id"] for r in held_roles}:
            raise _denied(f"user {user.id} no longer holds every role of application "
                          f"credential {cred.id}")
        roles = await self._with_implied([Role(id=r["id"], name=r["name"])
                                          for r in cred.roles])
        return self.tokens.issue(
            None, user_id=user.id, user_name=user.name, user_domain_id=user.domain_id,
            user_domain_name=user_domain.name, project_id=project.id,
            project_name=project.name, project_domain_id=project.domain_id,
            project_domain_name=project_domain.name, roles=roles,
            methods=["application_credential"], app_cred_id=cred.id)

    async def _find_app_cred(self, spec: Mapping[str, Any]) -> ApplicationCredential | None:
        if isinstance(spec.get("id"), str):
            return await _or_none(records.get_app_cred(self.db, spec["id"]))
        owner = spec.get("user")
        if not isinstance(spec.get("name"), str) or not isinstance(owner, dict):
            raise MalformedAuthRequest(reason="the application credential needs an 'id', "
                                       "or a 'name' and a 'user'")
        user = await self._find_auth_user(owner)
        if user is None:
            return None
        found = await records.list_app_creds(self.db, user.id, name=spec["name"])
        return found[0] if found else None

    async def _password_user(self, method: Any) -> User:
        if not isinstance(method, dict) or not isinstance(method.get("user"), dict):
            raise MalformedAuthRequest(reason="the password method needs a 'password' "
                                       "object holding a 'user'")
        spec = method["user"]
        user = await self._find_auth_user(spec)
        if user is None or not user.enabled:
            raise _denied(f"user {spec.get('id') or spec.get('name')} is unknown or disabled")
        if not await asyncio.to_thread(passwords.check_password, spec.get("password", ""),
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
                                       await self._auth_domain(spec.get("domain"), "user"))

    async def _token_user(self, method: Any) -> tuple[User, TokenData]:
        if not isinstance(method, dict) or not isinstance(method.get("id"), str):
            raise MalformedAuthRequest(reason="the token method needs a 'token' object "
                                       "holding an 'id'")
        parent = await self.validate(method["id"])
        if parent.app_cred_id is not None:
            raise _denied("a token from an application credential can't be rescoped")
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
            raise _denied(f"scope {scope!r} is not supported; only projects and the "
                          "system are")
        project = await self._find_scope_project(scope["project"])
        if project is None or not project.enabled:
            raise _denied(f"project {scope['project']} is unknown or disabled")
        roles = await records.effective_roles(self.db, user.id, "project", project.id)
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
        roles = await records.effective_roles(self.db, user.id, "project", project.id)
        return (project, roles) if roles else (None, [])

    async def _find_scope_project(self, spec: Any) -> Project | None:
        if not isinstance(spec, dict) or not ("id" in spec or "name" in spec):
            raise MalformedAuthRequest(reason="the project scope needs an 'id', or a "
                                       "'name' and a 'domain'")
        if "id" in spec:
            return await _or_none(records.get_project(self.db, spec["id"]))
        return await records.find_project(
            self.db, spec["name"], await self._auth_domain(spec.get("domain"), "project"))

    async def _auth_domain(self, ref: Any, owner: str) -> str:
        if not isinstance(ref, dict) or not ("id" in ref or "name" in ref):
            raise MalformedAuthRequest(reason=f"Expecting to find domain in {owner}")
        if "id" in ref:
            domain = await _or_none(records.get_domain(self.db, str(ref["id"])))
        else:
            domain = await records.find_domain(self.db, str(ref["name"]))
        if domain is None or ref.get("name", domain.name) != domain.name:
            raise _denied(f"domain {ref} is unknown")
        return domain.id

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

    async def get_domain(self, domain_id: str) -> Domain:
        return await records.get_domain(self.db, domain_id)

    async def list_domains(self, *, name: str | None = None, enabled: bool | None = None
                           ) -> list[Domain]:
        return await records.list_domains(self.db, name=name, enabled=enabled)

    async def create_domain(self, fields: Mapping[str, Any]) -> Domain:
        """fields: name, and optionally description, enabled."""
        return await records.create_domain(self.db, {
            "id": new_id(), "name": fields["name"],
            "description": fields.get("description") or "",
            "enabled": fields.get("enabled", True)})

    async def update_domain(self, domain_id: str, fields: Mapping[str, Any]) -> Domain:
        """fields: any of name, description, enabled. Disabling a domain revokes the
        tokens of its users and on its projects."""
        if domain_id == DEFAULT_DOMAIN_ID and fields.get("enabled") is False:
            raise DefaultDomainProtected()
        changes = {k: fields[k] for k in ("name", "enabled") if k in fields}
        if "description" in fields:
            changes["description"] = fields["description"] or ""
        before = await records.get_domain(self.db, domain_id)
        domain = await records.update_domain(self.db, domain_id, changes)
        if before.enabled and not domain.enabled:
            users = await records.list_users(self.db, domain_id=domain_id)
            projects = await records.list_projects(self.db, domain_id=domain_id)
            await self.revocations.revoke_many(
                [{"user_id": u.id} for u in users] + [{"project_id": p.id} for p in projects])
        return domain

    async def delete_domain(self, domain_id: str) -> None:
        """Remove a disabled domain with its users, groups and projects."""
        if domain_id == DEFAULT_DOMAIN_ID:
            raise DefaultDomainProtected()
        if (await records.get_domain(self.db, domain_id)).enabled:
            raise DomainStillEnabled()
        user_ids, project_ids = await records.delete_domain(self.db, domain_id)
        await self.revocations.revoke_many(
            [{"user_id": u} for u in user_ids] + [{"project_id": p} for p in project_ids])

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
        domain_id = await self._known_domain(fields.get("domain_id"))
        if fields.get("parent_id") not in (None, domain_id):
            raise Unsupported(what="A project hierarchy (parent_id other than the domain)")
        if fields.get("is_domain"):
            raise Unsupported(what="A project acting as a domain (is_domain true)")
        return await records.create_project(self.db, {
            "id": new_id(), "name": fields["name"], "domain_id": domain_id,
            "description": fields.get("description") or "",
            "enabled": fields.get("enabled", True)})

    async def update_project(self, project_id: str, fields: Mapping[str, Any]) -> Project:
        """fields: any of name, description, enabled. Disabling revokes the tokens
        scoped to the project."""
        changes = {k: fields[k] for k in ("name", "enabled") if k in fields}
        if "description" in fields:
            changes["description"] = fields["description"] or ""
        project = await records.update_project(self.db, project_id, changes)
        if fields.get("enabled") is False:
            await self.revocations.revoke(project_id=project_id)
        return project

    async def delete_project(self, project_id: str) -> None:
        """Remove the project and every assignment on it; its tokens are revoked."""
        await records.delete_project(self.db, project_id)
        await self.revocations.revoke(project_id=project_id)

    async def projects_of_user(self, user_id: str, *, enabled_only: bool = False
                               ) -> list[Project]:
        """Projects where the user holds a role, directly or through a group;
        UserNotFound when there is no such user."""
        await records.get_user(self.db, user_id)
        found = {p.id: p for p in await records.projects_of_user(self.db, user_id)}
        found.update((p.id, p) for p in await records.projects_via_groups(self.db, user_id))
        projects = sorted(found.values(), key=lambda p: (p.name, p.id))
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
                  "domain_id": await self._known_domain(fields.get("domain_id")),
                  "enabled": fields.get("enabled", True),
                  "email": fields.get("email"),
                  "default_project_id": await self._known_project(
                      fields.get("default_project_id")),
                  "password_hash": await _hash(fields.get("password"))}
        return await records.create_user(self.db, values)

    async def update_user(self, user_id: str, fields: Mapping[str, Any]) -> User:
        """fields: any of name, password, enabled, default_project_id, email.
        Disabling the user or changing their password revokes their tokens."""
        changes = {k: fields[k] for k in ("name", "enabled", "email") if k in fields}
        if "default_project_id" in fields:
            changes["default_project_id"] = await self._known_project(
                fields["default_project_id"])
        revoke = fields.get("enabled") is False
        if "password" in fields:
            current = await records.get_user(self.db, user_id)
            # Setting the same password again (the service user's, at every start)
            # is no change and keeps the tokens.
            revoke |= not await asyncio.to_thread(
                passwords.check_password, fields["password"] or "", current.password_hash)
            changes["password_hash"] = await _hash(fields["password"])
        user = await records.update_user(self.db, user_id, changes)
        if revoke:
            await self.revocations.revoke(user_id=user_id)
        return user

    async def change_password(self, user_id: str, original: str, password: str) -> None:
        """A user changing their own password; AuthenticationFailed when the original
        is wrong. Their tokens are revoked."""
        user = await records.get_user(self.db, user_id)
        if not await asyncio.to_thread(passwords.check_password, original,
                                       user.password_hash):
            raise _denied(f"wrong original password for user {user_id}")
        await records.update_user(self.db, user_id, {"password_hash": await _hash(password)})
        await self.revocations.revoke(user_id=user_id)

    async def delete_user(self, user_id: str) -> None:
        """Remove the user and everything they hold; their tokens are revoked."""
        await records.delete_user(self.db, user_id)
        await self.revocations.revoke(user_id=user_id)

    # --- groups -----------------------------------------------------------------

    async def get_group(self, group_id: str) -> Group:
        return await records.get_group(self.db, group_id)

    async def list_groups(self, *, name: str | None = None, domain_id: str | None = None
                          ) -> list[Group]:
        return await records.list_groups(self.db, name=name, domain_id=domain_id)

    async def create_group(self, fields: Mapping[str, Any]) -> Group:
        return await records.create_group(self.db, {
            "id": new_id(), "name": fields["name"],
            "domain_id": await self._known_domain(fields.get("domain_id")),
            "description": fields.get("description") or ""})

    async def update_group(self, group_id: str, fields: Mapping[str, Any]) -> Group:
        changes = {k: fields[k] for k in ("name",) if k in fields}
        if "description" in fields:
            changes["description"] = fields["description"] or ""
        return await records.update_group(self.db, group_id, changes)

    async def delete_group(self, group_id: str) -> None:
        """Remove the group; its members' tokens (which may carry its roles) are revoked."""
        members = await records.delete_group(self.db, group_id)
        await self.revocations.revoke_many([{"user_id": u} for u in members])

    async def add_member(self, group_id: str, user_id: str) -> None:
        await records.add_member(self.db, group_id, user_id)

    async def check_member(self, group_id: str, user_id: str) -> None:
        await records.check_member(self.db, group_id, user_id)

    async def remove_member(self, group_id: str, user_id: str) -> None:
        """Take the user out of the group and revoke their tokens, which may carry
        roles held through it."""
        await records.remove_member(self.db, group_id, user_id)
        await self.revocations.revoke(user_id=user_id)

    async def members_of(self, group_id: str) -> list[User]:
        return await records.members_of(self.db, group_id)

    async def groups_of(self, user_id: str) -> list[Group]:
        return await records.groups_of(self.db, user_id)

    # --- roles and assignments --------------------------------------------------

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
        """Remove the role and every grant of it; the tokens of those who held it
        (which carry it) are revoked."""
        holders = await records.delete_role(self.db, role_id)
        await self.revocations.revoke_many([{"user_id": u} for u in sorted(holders)])

    async def grant(self, user_id: str, project_id: str, role_id: str) -> bool:
        """Give the role; idempotent, True when the user did not hold it yet."""
        return await records.grant(self.db, user_id, project_id, role_id)

    async def check_grant(self, user_id: str, project_id: str, role_id: str) -> None:
        """AssignmentNotFound unless the user holds the role on the project."""
        if not await records.has_grant(self.db, user_id, project_id, role_id):
            raise records.AssignmentNotFound(user_id=user_id, project_id=project_id,
                                             role_id=role_id)

    async def revoke(self, user_id: str, project_id: str, role_id: str) -> None:
        """Take the role away; the user's tokens on the project are revoked."""
        await records.revoke(self.db, user_id, project_id, role_id)
        await self.revocations.revoke(user_id=user_id, project_id=project_id)

    async def assign(self, a: Assignment) -> None:
        """Record an assignment (idempotent): user-on-project, or any other kind."""
        if a.kind == "UserProject":
            await records.grant(self.db, a.actor_id, a.target_id, a.role_id)
        else:
            await records.put_assignment(self.db, a)

    async def check_assignment(self, a: Assignment) -> None:
        if a.kind == "UserProject":
            await self.check_grant(a.actor_id, a.target_id, a.role_id)
        elif not await records.has_assignment(self.db, a):
            raise records.ScopedAssignmentNotFound(
                role_id=a.role_id, where=f"{a.actor}: {a.actor_id}, {a.scope}: {a.target_id}")

    async def unassign(self, a: Assignment) -> None:
        """Remove an assignment and revoke the tokens that may carry it."""
        if a.kind == "UserProject":
            await self.revoke(a.actor_id, a.target_id, a.role_id)
            return
        await records.remove_assignment(self.db, a)
        users = ([a.actor_id] if a.actor == "user"
                 else [u.id for u in await records.members_of(self.db, a.actor_id)])
        project = a.target_id if a.scope == "project" else None
        await self.revocations.revoke_many([{"user_id": u, "project_id": project}
                                            for u in users])

    async def roles_of(self, a: Assignment) -> list[Role]:
        """The roles directly assigned to the actor on the target (a.role_id unused)."""
        found = [x.role_id for x in await records.list_assignments(self.db)
                 if (x.actor, x.actor_id, x.scope, x.target_id)
                 == (a.actor, a.actor_id, a.scope, a.target_id)]
        return [r for r in await records.list_roles(self.db) if r.id in found]

    async def roles_on_project(self, user_id: str, project_id: str) -> list[Role]:
        await records.get_user(self.db, user_id)
        await records.get_project(self.db, project_id)
        return await records.roles_on_project(self.db, user_id, project_id)

    async def list_grants(self, *, user_id: str | None = None,
                          project_id: str | None = None,
                          role_id: str | None = None) -> list[records.Grant]:
        """Users' direct roles on projects, narrowed by any of the three ids."""
        return await records.list_grants(self.db, user_id=user_id, project_id=project_id,
                                         role_id=role_id)

    async def list_assignments(self, *, effective: bool = False
                               ) -> list[tuple[Assignment, str | None]]:
        """Every assignment as (assignment, group id it came through). With `effective`,
        group assignments become one per member and implied roles are added, as
        Keystone's ?effective lists them."""
        found = await records.list_assignments(self.db)
        if not effective:
            return [(a, None) for a in found]
        members = await records.memberships(self.db)
        roles = {r.id: r for r in await records.list_roles(self.db)}
        by_name = {r.name: r for r in roles.values()}
        rows: dict[Assignment, str | None] = {}
        for a in found:
            users = ([(a.actor_id, None)] if a.actor == "user"
                     else [(u, a.actor_id) for u in members.get(a.actor_id, [])])
            for user_id, via in users:
                for role_id in _implied_ids(a.role_id, roles, by_name):
                    row = Assignment("user", user_id, a.scope, a.target_id, role_id)
                    rows.setdefault(row, via)
        return list(rows.items())

    async def records_for(self, assignments: list[Assignment]
                          ) -> dict[str, dict[str, Any]]:
        """Users, groups, projects, domains and roles the assignments name, by kind and id."""
        ids: dict[str, set[str]] = {"user": set(), "group": set(), "project": set(),
                                    "domain": set(), "role": set()}
        for a in assignments:
            ids[a.actor].add(a.actor_id)
            if a.scope != "system":
                ids[a.scope].add(a.target_id)
            ids["role"].add(a.role_id)
        found: dict[str, dict[str, Any]] = {
            "user": await records.records_by_id(self.db, User, ids["user"]),
            "group": await records.records_by_id(self.db, Group, ids["group"]),
            "project": await records.records_by_id(self.db, Project, ids["project"]),
            "role": await records.records_by_id(self.db, Role, ids["role"])}
        owners = {r.domain_id for kind in ("user", "group", "project")
                  for r in found[kind].values()}
        found["domain"] = await records.records_by_id(self.db, Domain,
                                                      ids["domain"] | owners)
        return found

    # --- application credentials ------------------------------------------------

    async def create_app_cred(self, token: TokenData, user_id: str,
                              fields: Mapping[str, Any]
                              ) -> tuple[ApplicationCredential, str]:
        """A credential for the token's user on the token's project, with the token's
        roles or a subset; returns it with its secret (only ever shown now)."""
        if token.project_id is None:
            raise NeedsProjectScope()
        await self._require_unrestricted(token)
        roles = token.roles
        if fields.get("roles"):
            roles = [self._held_role(token, ref) for ref in fields["roles"]]
        expires_at = None
        if fields.get("expires_at") is not None:
            try:
                expires_at = timeutils.parse_isotime(fields["expires_at"])
            except ValueError:
                raise exceptions.Invalid(
                    f"expires_at {fields['expires_at']} is not an ISO 8601 time.") from None
            if expires_at <= timeutils.utcnow():
                raise ExpiryInThePast(value=fields["expires_at"])
        secret = fields.get("secret") or _generated_secret()
        cred = await records.create_app_cred(self.db, {
            "id": new_id(), "name": fields["name"],
            "description": fields.get("description") or "",
            "secret_hash": await _hash(secret), "user_id": user_id,
            "project_id": token.project_id, "expires_at": expires_at,
            "unrestricted": bool(fields.get("unrestricted", False)),
            "roles": [{"id": r["id"], "name": r["name"]} for r in roles]})
        return cred, secret

    @staticmethod
    def _held_role(token: TokenData, ref: Mapping[str, Any]) -> dict[str, str]:
        for role in token.roles:
            if ref.get("id", role["id"]) == role["id"] and (
                    ref.get("name", role["name"]) == role["name"]):
                return role
        raise RoleNotHeld(role=ref.get("id") or ref.get("name"))

    async def get_app_cred(self, user_id: str, app_cred_id: str) -> ApplicationCredential:
        return await records.get_app_cred(self.db, app_cred_id, user_id)

    async def list_app_creds(self, user_id: str, name: str | None = None
                             ) -> list[ApplicationCredential]:
        await records.get_user(self.db, user_id)
        return await records.list_app_creds(self.db, user_id, name)

    async def delete_app_cred(self, token: TokenData, user_id: str, app_cred_id: str
                              ) -> None:
        """Delete the credential and revoke the tokens made with it. A restricted
        credential's token can't (as Keystone: it would wipe its owner's others)."""
        await self._require_unrestricted(token)
        await records.delete_app_cred(self.db, app_cred_id, user_id)
        await self.revocations.revoke(app_cred_id=app_cred_id)

    async def _require_unrestricted(self, token: TokenData) -> None:
        if token.app_cred_id is not None:
            parent = await records.get_app_cred(self.db, token.app_cred_id)
            if not parent.unrestricted:
                raise RestrictedAppCred()

    # --- checks on references in request bodies ---------------------------------

    async def _known_domain(self, domain_id: str | None) -> str:
        if domain_id is None:
            return DEFAULT_DOMAIN_ID
        if await _or_none(records.get_domain(self.db, domain_id)) is None:
            raise UnknownReference(field="Domain", value=domain_id, hint="")
        return domain_id

    async def _known_project(self, project_id: str | None) -> str | None:
        if project_id is not None and await _or_none(
                records.get_project(self.db, project_id)) is None:
            raise UnknownReference(field="Project", value=project_id, hint="")
        return project_id


def _implied_ids(role_id: str, roles: Mapping[str, Role], by_name: Mapping[str, Role]
                 ) -> list[str]:
    """The role and every role it implies, by id."""
    found = [role_id]
    pending = [roles[role_id].name] if role_id in roles else []
    while pending:
        for name in IMPLIED_ROLES.get(pending.pop(), ()):
            if name in by_name and by_name[name].id not in found:
                found.append(by_name[name].id)
                pending.append(name)
    return found


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


def _generated_secret() -> str:
    """64 random bytes, URL-safe; never starting with '-', which a command line would
    take for an option (`--os-application-credential-secret -abc…`)."""
    while True:
        secret = secrets.token_urlsafe(64)
        if not secret.startswith("-"):
            return secret
