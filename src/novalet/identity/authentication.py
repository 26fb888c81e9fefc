"""Authentication: who a request to /v3/auth/tokens is (password, token or
application credential), what it is scoped to and which roles its token carries,
and checking tokens on every request (revocation included)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from novalet import config, exceptions
from novalet.common import timeutils
from novalet.db import identity as records
from novalet.db.engine import Database
from novalet.db.identity import SYSTEM
from novalet.db.models import ApplicationCredential, Domain, Project, Role, User
from novalet.identity import passwords
from novalet.identity.revocations import Revocations
from novalet.identity.tokens import TokenData, TokenNotFound, TokenNotValid, TokenProvider

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# Keystone's bootstrap makes admin imply member and member imply reader; a token
# lists the roles held and every role they imply.
IMPLIED_ROLES = {"admin": ("member",), "member": ("reader",)}


class AuthenticationFailed(exceptions.Unauthorized):
    """Deliberately vague: the reason is logged, never told to the caller."""

    msg_fmt = "The request you have made requires authentication."


class MalformedAuthRequest(exceptions.Invalid):
    msg_fmt = "Invalid authentication request: %(reason)s"


class Authentication:
    """The token half of IdentityService (which provides db, tokens, conf and
    revocations)."""

    db: Database
    tokens: TokenProvider
    conf: config.Config
    revocations: Revocations


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
            raise denied(f"methods {methods} are not supported; use password, token "
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
        await self.check_revocation(data)
        return data

    async def _check_app_cred(self, cred_id: str) -> None:
        """A token made from an application credential dies with it: when the
        credential expired (CVE-2022-2447: its tokens outlived it) or is gone.
        New tokens are also capped at its expiry; this covers older ones."""
        cred = await or_none(records.get_app_cred(self.db, cred_id))
        if cred is None:
            raise TokenNotValid("The application credential of the token is gone.")
        if cred.expires_at is not None and cred.expires_at <= timeutils.utcnow():
            raise TokenNotValid("The application credential of the token has expired.")

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
        """TokenNotValid (401) when `token` (already opened) has been revoked, or was
        made from an application credential that has expired or is gone."""
        await self.revocations.check(token)
        if token.app_cred_id:
            await self._check_app_cred(token.app_cred_id)

    async def _enabled_domain(self, domain_id: str) -> Domain:
        domain = await or_none(records.get_domain(self.db, domain_id))
        if domain is None or not domain.enabled:
            raise denied(f"domain {domain_id} is gone or disabled")
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
            raise denied(f"user {user.id} has no role on the system")
        return await self._with_implied(roles)

    async def _app_cred_token(self, spec: Any) -> tuple[str, TokenData]:
        """A project-scoped token carrying the application credential's roles."""
        if not isinstance(spec, dict) or not isinstance(spec.get("secret"), str):
            raise MalformedAuthRequest(reason="the application_credential method needs "
                                       "an 'id', or a 'name' and a 'user', and a 'secret'")
        cred = await self._find_app_cred(spec)
        if cred is None:
            raise denied(f"application credential {spec.get('id') or spec.get('name')} "
                          "is unknown")
        if cred.expires_at is not None and cred.expires_at <= timeutils.utcnow():
            raise denied(f"application credential {cred.id} has expired")
        if not await asyncio.to_thread(passwords.check_password, spec["secret"],
                                       cred.secret_hash):
            raise denied(f"wrong secret for application credential {cred.id}")
        user = await or_none(records.get_user(self.db, cred.user_id))
        project = await or_none(records.get_project(self.db, cred.project_id))
        if user is None or not user.enabled or project is None or not project.enabled:
            raise denied(f"the user or project of application credential {cred.id} "
                          "is gone or disabled")
        user_domain = await self._enabled_domain(user.domain_id)
        project_domain = await self._enabled_domain(project.domain_id)
        held = {r.id for r in await records.effective_roles(
            self.db, user.id, "project", project.id)}
        held_roles = await self._with_implied(
            [r for r in await records.list_roles(self.db) if r.id in held])
        if not {r["id"] for r in cred.roles} <= {r["id"] for r in held_roles}:
            raise denied(f"user {user.id} no longer holds every role of application "
                          f"credential {cred.id}")
        roles = await self._with_implied([Role(id=r["id"], name=r["name"])
                                          for r in cred.roles])
        return self.tokens.issue(
            None, user_id=user.id, user_name=user.name, user_domain_id=user.domain_id,
            user_domain_name=user_domain.name, project_id=project.id,
            project_name=project.name, project_domain_id=project.domain_id,
            project_domain_name=project_domain.name, roles=roles,
            methods=["application_credential"], app_cred_id=cred.id,
            not_after=cred.expires_at)  # the credential's expiry ends its tokens

    async def _find_app_cred(self, spec: Mapping[str, Any]) -> ApplicationCredential | None:
        if isinstance(spec.get("id"), str):
            return await or_none(records.get_app_cred(self.db, spec["id"]))
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
            raise denied(f"user {spec.get('id') or spec.get('name')} is unknown or disabled")
        if not await asyncio.to_thread(passwords.check_password, spec.get("password", ""),
                                       user.password_hash):
            raise denied(f"wrong password for user {user.id}")
        return user

    async def _find_auth_user(self, spec: Mapping[str, Any]) -> User | None:
        if "id" in spec:
            return await or_none(records.get_user(self.db, spec["id"]))
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
            raise denied("a token from an application credential can't be rescoped")
        user = await or_none(records.get_user(self.db, parent.user_id))
        if user is None or not user.enabled:
            raise denied(f"user {parent.user_id} of the token is gone or disabled")
        return user, parent

    async def _scope(self, user: User, scope: Any, by_password: bool
                     ) -> tuple[Project | None, list[Role]]:
        """The project a new token is scoped to and the user's roles there."""
        if scope == "unscoped":
            return None, []
        if scope is None:
            return await self._default_scope(user) if by_password else (None, [])
        if not isinstance(scope, dict) or "project" not in scope:
            raise denied(f"scope {scope!r} is not supported; only projects and the "
                          "system are")
        project = await self._find_scope_project(scope["project"])
        if project is None or not project.enabled:
            raise denied(f"project {scope['project']} is unknown or disabled")
        roles = await records.effective_roles(self.db, user.id, "project", project.id)
        if not roles:
            raise denied(f"user {user.id} has no role on project {project.id}")
        return project, roles

    async def _default_scope(self, user: User) -> tuple[Project | None, list[Role]]:
        """Keystone scopes a request without a scope to the user's default project,
        when the user may use it; otherwise the token is unscoped."""
        if not user.default_project_id:
            return None, []
        project = await or_none(records.get_project(self.db, user.default_project_id))
        if project is None or not project.enabled:
            return None, []
        roles = await records.effective_roles(self.db, user.id, "project", project.id)
        return (project, roles) if roles else (None, [])

    async def _find_scope_project(self, spec: Any) -> Project | None:
        if not isinstance(spec, dict) or not ("id" in spec or "name" in spec):
            raise MalformedAuthRequest(reason="the project scope needs an 'id', or a "
                                       "'name' and a 'domain'")
        if "id" in spec:
            return await or_none(records.get_project(self.db, spec["id"]))
        return await records.find_project(
            self.db, spec["name"], await self._auth_domain(spec.get("domain"), "project"))

    async def _auth_domain(self, ref: Any, owner: str) -> str:
        if not isinstance(ref, dict) or not ("id" in ref or "name" in ref):
            raise MalformedAuthRequest(reason=f"Expecting to find domain in {owner}")
        if "id" in ref:
            domain = await or_none(records.get_domain(self.db, str(ref["id"])))
        else:
            domain = await records.find_domain(self.db, str(ref["name"]))
        if domain is None or ref.get("name", domain.name) != domain.name:
            raise denied(f"domain {ref} is unknown")
        return domain.id


def implied_ids(role_id: str, roles: Mapping[str, Role], by_name: Mapping[str, Role]
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


def denied(reason: str) -> AuthenticationFailed:
    LOG.info("Authentication refused: %s", reason)
    return AuthenticationFailed()


async def or_none(lookup: Awaitable[T]) -> T | None:
    """The record, or None where the lookup raises its NotFound."""
    try:
        return await lookup
    except exceptions.NotFound:
        return None
