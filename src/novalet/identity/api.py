"""The identity service: domains, users, groups, projects, roles and assignments,
application credentials and revocation; authentication.py issues and checks tokens."""

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
from novalet.db.cache_generations import Generation, shared
from novalet.db.engine import Database
from novalet.db.identity import Assignment
from novalet.db.models import ApplicationCredential, Domain, Group, Project, Role, User
from novalet.identity import passwords, user_extras
from novalet.identity.authentication import (Authentication,
                                             denied, implied_ids,
                                             or_none)
from novalet.identity.revocations import Revocations
from novalet.identity.tokens import TokenData, TokenProvider

LOG = logging.getLogger(__name__)
T = TypeVar("T")

BOOTSTRAP_ROLES = ("admin", "member", "reader")
ADMIN_ROLES = ("admin", "member", "reader")
DEMO_ROLES = ("member", "reader")
INTERFACES = ("public", "internal", "admin")
# (type, name, path under the public URL) of every service in the catalog. The
# identity URL is versioned, as Keystone's own install guide registers it: clients
# (keystoneauth) then use it directly instead of redirecting to /identity/ and
# reading its 300 Multiple Choices before every identity call. The network URL is
# the root serving the version document, as Neutron registers it: clients add /v2.0.
SERVICES = (("identity", "keystone", "/identity/v3"),
            ("compute", "nova", "/compute/v2.1"),
            ("image", "glance", "/image"),
            ("network", "neutron", "/network"))
_CATALOG_NAMESPACE = uuid.UUID("5b0b6c1e-4a8e-4a53-9a3c-2d3f7f1f7a10")
DEFAULT_DOMAIN_ID = "default"


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


class IdentityService(Authentication):
    """Identity records live in the database; tokens carry the user, scope and roles
    sealed inside them, so checking a token needs no database read."""

    def __init__(self, db: Database, tokens: TokenProvider, conf: config.Config) -> None:
        self.db = db
        self.tokens = tokens
        self.conf = conf
        self.revocations = Revocations(
            db, tokens.ttl, conf.get("identity", "revocation_refresh"),
            Generation(db, "revocations", shared(conf.get("DEFAULT", "transport_url"))))

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
        default_project_id, email, and extra attributes (kept as given). The
        password is stored only as a hash."""
        values = {"id": new_id(), "name": fields["name"],
                  "extra": user_extras.merged(None, fields),
                  "domain_id": await self._known_domain(fields.get("domain_id")),
                  "enabled": fields.get("enabled", True),
                  "email": fields.get("email"),
                  "default_project_id": await self._known_project(
                      fields.get("default_project_id")),
                  "password_hash": await _hash(fields.get("password"))}
        return await records.create_user(self.db, values)

    async def update_user(self, user_id: str, fields: Mapping[str, Any]) -> User:
        """fields: any of name, password, enabled, default_project_id, email, and
        extra attributes (merged into those kept). Disabling the user or changing
        their password revokes their tokens."""
        changes = {k: fields[k] for k in ("name", "enabled", "email") if k in fields}
        if user_extras.of(fields):
            current = await records.get_user(self.db, user_id)
            changes["extra"] = user_extras.merged(current.extra, fields)
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
            raise denied(f"wrong original password for user {user_id}")
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
                for role_id in implied_ids(a.role_id, roles, by_name):
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
        if await or_none(records.get_domain(self.db, domain_id)) is None:
            raise UnknownReference(field="Domain", value=domain_id, hint="")
        return domain_id

    async def _known_project(self, project_id: str | None) -> str | None:
        if project_id is not None and await or_none(
                records.get_project(self.db, project_id)) is None:
            raise UnknownReference(field="Project", value=project_id, hint="")
        return project_id


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
