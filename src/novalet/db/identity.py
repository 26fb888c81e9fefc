"""Identity records: domains, users, groups, projects, roles, role assignments,
application credentials and token revocation events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, inspect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.db.engine import Database
from novalet.db.models import (
    ApplicationCredential,
    Base,
    Domain,
    Group,
    GroupMembership,
    Project,
    RevocationEvent,
    Role,
    RoleAssignment,
    ScopedAssignment,
    User,
)

M = TypeVar("M", bound=Base)


class UserNotFound(exceptions.NotFound):
    msg_fmt = "Could not find user: %(user_id)s."


class ProjectNotFound(exceptions.NotFound):
    msg_fmt = "Could not find project: %(project_id)s."


class RoleNotFound(exceptions.NotFound):
    msg_fmt = "Could not find role: %(role_id)s."


class AssignmentNotFound(exceptions.NotFound):
    msg_fmt = ("Could not find role assignment with role: %(role_id)s, "
               "user: %(user_id)s, project: %(project_id)s.")


class DuplicateUser(exceptions.Conflict):
    msg_fmt = ("Conflict occurred attempting to store user - Duplicate entry found "
               "with name %(name)s at domain ID %(domain_id)s.")


class DuplicateProject(exceptions.Conflict):
    msg_fmt = ("Conflict occurred attempting to store project - Duplicate entry found "
               "with name %(name)s at domain ID %(domain_id)s.")


class DuplicateRole(exceptions.Conflict):
    msg_fmt = ("Conflict occurred attempting to store role - Duplicate entry found "
               "with name %(name)s.")


Grant = tuple[User, Project, Role]


# --- users ------------------------------------------------------------------

async def get_user(db: Database, user_id: str) -> User:
    async with db.transaction() as session:
        return await _user(session, user_id)


async def find_user(db: Database, name: str, domain_id: str) -> User | None:
    async with db.transaction() as session:
        return await session.scalar(
            select(User).where(User.name == name, User.domain_id == domain_id))


async def list_users(db: Database, *, name: str | None = None, domain_id: str | None = None,
                     enabled: bool | None = None) -> list[User]:
    query = select(User).order_by(User.name, User.id)
    query = _filter(query, User, name=name, domain_id=domain_id, enabled=enabled)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def create_user(db: Database, values: Mapping[str, Any]) -> User:
    """Insert a user; DuplicateUser when its domain already has one of that name."""
    user = User(**values)
    async with db.transaction() as session:
        await _claim_user_name(session, user.name, user.domain_id)
        session.add(user)
        await _flush(session, DuplicateUser(name=user.name, domain_id=user.domain_id))
    return user


async def update_user(db: Database, user_id: str, changes: Mapping[str, Any]) -> User:
    """Apply column changes; DuplicateUser when a new name is taken in the domain."""
    async with db.transaction() as session:
        user = await _user(session, user_id)
        if changes.get("name", user.name) != user.name:
            await _claim_user_name(session, changes["name"], user.domain_id)
        _apply(user, changes)
        await _flush(session, DuplicateUser(name=user.name, domain_id=user.domain_id))
    return user


async def delete_user(db: Database, user_id: str) -> None:
    """Remove the user with their assignments, memberships and application credentials."""
    async with db.transaction() as session:
        user = await _user(session, user_id)
        await _forget_users(session, [user_id])
        await session.delete(user)


async def _forget_users(session: AsyncSession, user_ids: list[str]) -> None:
    await session.execute(delete(RoleAssignment).where(RoleAssignment.user_id.in_(user_ids)))
    await session.execute(delete(ScopedAssignment).where(
        ScopedAssignment.kind.in_(USER_KINDS), ScopedAssignment.actor_id.in_(user_ids)))
    await session.execute(delete(GroupMembership).where(
        GroupMembership.user_id.in_(user_ids)))
    await session.execute(delete(ApplicationCredential).where(
        ApplicationCredential.user_id.in_(user_ids)))


async def _user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(user_id=user_id)
    return user


async def _claim_user_name(session: AsyncSession, name: str, domain_id: str) -> None:
    if await session.scalar(select(User.id).where(User.name == name,
                                                  User.domain_id == domain_id)):
        raise DuplicateUser(name=name, domain_id=domain_id)


# --- projects ---------------------------------------------------------------

async def get_project(db: Database, project_id: str) -> Project:
    async with db.transaction() as session:
        return await _project(session, project_id)


async def find_project(db: Database, name: str, domain_id: str) -> Project | None:
    async with db.transaction() as session:
        return await session.scalar(
            select(Project).where(Project.name == name, Project.domain_id == domain_id))


async def list_projects(db: Database, *, name: str | None = None,
                        domain_id: str | None = None,
                        enabled: bool | None = None) -> list[Project]:
    query = select(Project).order_by(Project.name, Project.id)
    query = _filter(query, Project, name=name, domain_id=domain_id, enabled=enabled)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def create_project(db: Database, values: Mapping[str, Any]) -> Project:
    """Insert a project; DuplicateProject when its domain already has one of that name."""
    project = Project(**values)
    async with db.transaction() as session:
        await _claim_project_name(session, project.name, project.domain_id)
        session.add(project)
        await _flush(session, DuplicateProject(name=project.name,
                                               domain_id=project.domain_id))
    return project


async def update_project(db: Database, project_id: str, changes: Mapping[str, Any]
                         ) -> Project:
    """Apply column changes; DuplicateProject when a new name is taken in the domain."""
    async with db.transaction() as session:
        project = await _project(session, project_id)
        if changes.get("name", project.name) != project.name:
            await _claim_project_name(session, changes["name"], project.domain_id)
        _apply(project, changes)
        await _flush(session, DuplicateProject(name=project.name,
                                               domain_id=project.domain_id))
    return project


async def delete_project(db: Database, project_id: str) -> None:
    async with db.transaction() as session:
        project = await _project(session, project_id)
        await _forget_projects(session, [project_id])
        await session.delete(project)


async def _forget_projects(session: AsyncSession, project_ids: list[str]) -> None:
    await session.execute(
        delete(RoleAssignment).where(RoleAssignment.project_id.in_(project_ids)))
    await session.execute(delete(ScopedAssignment).where(
        ScopedAssignment.kind == "GroupProject", ScopedAssignment.target_id.in_(project_ids)))
    await session.execute(delete(ApplicationCredential).where(
        ApplicationCredential.project_id.in_(project_ids)))


async def _project(session: AsyncSession, project_id: str) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise ProjectNotFound(project_id=project_id)
    return project


async def _claim_project_name(session: AsyncSession, name: str, domain_id: str) -> None:
    if await session.scalar(select(Project.id).where(Project.name == name,
                                                     Project.domain_id == domain_id)):
        raise DuplicateProject(name=name, domain_id=domain_id)


# --- roles ------------------------------------------------------------------

async def get_role(db: Database, role_id: str) -> Role:
    async with db.transaction() as session:
        return await _role(session, role_id)


async def list_roles(db: Database, *, name: str | None = None) -> list[Role]:
    query = _filter(select(Role).order_by(Role.name), Role, name=name)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def create_role(db: Database, role_id: str, name: str) -> Role:
    """Insert a role; DuplicateRole when the name is taken (role names are global)."""
    role = Role(id=role_id, name=name)
    async with db.transaction() as session:
        if await session.scalar(select(Role.id).where(Role.name == name)):
            raise DuplicateRole(name=name)
        session.add(role)
        await _flush(session, DuplicateRole(name=name))
    return role


async def delete_role(db: Database, role_id: str) -> set[str]:
    """Remove the role and its grants; returns the users who held it, directly or
    through a group."""
    async with db.transaction() as session:
        role = await _role(session, role_id)
        holders = set((await session.scalars(select(RoleAssignment.user_id).where(
            RoleAssignment.role_id == role_id))).all())
        scoped = (await session.execute(select(
            ScopedAssignment.kind, ScopedAssignment.actor_id).where(
            ScopedAssignment.role_id == role_id))).all()
        holders.update(actor for kind, actor in scoped if kind.startswith("User"))
        groups = {actor for kind, actor in scoped if kind.startswith("Group")}
        if groups:
            holders.update((await session.scalars(select(GroupMembership.user_id).where(
                GroupMembership.group_id.in_(groups)))).all())
        await session.execute(delete(RoleAssignment).where(RoleAssignment.role_id == role_id))
        await session.execute(delete(ScopedAssignment).where(
            ScopedAssignment.role_id == role_id))
        await session.delete(role)
    return holders


async def _role(session: AsyncSession, role_id: str) -> Role:
    role = await session.get(Role, role_id)
    if role is None:
        raise RoleNotFound(role_id=role_id)
    return role


# --- role assignments -------------------------------------------------------

async def grant(db: Database, user_id: str, project_id: str, role_id: str) -> bool:
    """Give the user the role on the project; False when they already had it."""
    try:
        async with db.transaction() as session:
            await _check_grant_parts(session, user_id, project_id, role_id)
            if await session.get(RoleAssignment, (user_id, project_id, role_id)):
                return False
            session.add(RoleAssignment(user_id=user_id, project_id=project_id,
                                       role_id=role_id))
    except IntegrityError:
        return False  # granted concurrently
    return True


async def has_grant(db: Database, user_id: str, project_id: str, role_id: str) -> bool:
    async with db.transaction() as session:
        await _check_grant_parts(session, user_id, project_id, role_id)
        return await session.get(RoleAssignment, (user_id, project_id, role_id)) is not None


async def revoke(db: Database, user_id: str, project_id: str, role_id: str) -> None:
    async with db.transaction() as session:
        await _check_grant_parts(session, user_id, project_id, role_id)
        assignment = await session.get(RoleAssignment, (user_id, project_id, role_id))
        if assignment is None:
            raise AssignmentNotFound(user_id=user_id, project_id=project_id, role_id=role_id)
        await session.delete(assignment)


async def list_grants(db: Database, *, user_id: str | None = None,
                      project_id: str | None = None, role_id: str | None = None
                      ) -> list[Grant]:
    """Every (user, project, role) held, narrowed by any of the three ids."""
    query = (select(User, Project, Role)
             .join(RoleAssignment, RoleAssignment.user_id == User.id)
             .join(Project, Project.id == RoleAssignment.project_id)
             .join(Role, Role.id == RoleAssignment.role_id)
             .order_by(User.name, Project.name, Role.name))
    query = _filter(query, RoleAssignment, user_id=user_id, project_id=project_id,
                    role_id=role_id)
    async with db.transaction() as session:
        return [(row[0], row[1], row[2]) for row in await session.execute(query)]


async def roles_on_project(db: Database, user_id: str, project_id: str) -> list[Role]:
    query = (select(Role).join(RoleAssignment, RoleAssignment.role_id == Role.id)
             .where(RoleAssignment.user_id == user_id,
                    RoleAssignment.project_id == project_id)
             .order_by(Role.name))
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def projects_of_user(db: Database, user_id: str) -> list[Project]:
    """The projects on which the user holds at least one role."""
    held = select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)
    query = select(Project).where(Project.id.in_(held)).order_by(Project.name)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def _check_grant_parts(session: AsyncSession, user_id: str, project_id: str,
                             role_id: str) -> None:
    await _user(session, user_id)
    await _project(session, project_id)
    await _role(session, role_id)


# --- domains ----------------------------------------------------------------

class DomainNotFound(exceptions.NotFound):
    msg_fmt = "Could not find domain: %(domain_id)s."


class DuplicateDomain(exceptions.Conflict):
    msg_fmt = ("Conflict occurred attempting to store domain - Duplicate entry found "
               "with name %(name)s.")


async def get_domain(db: Database, domain_id: str) -> Domain:
    async with db.transaction() as session:
        domain = await session.get(Domain, domain_id)
    if domain is None:
        raise DomainNotFound(domain_id=domain_id)
    return domain


async def find_domain(db: Database, name: str) -> Domain | None:
    async with db.transaction() as session:
        return await session.scalar(select(Domain).where(Domain.name == name))


async def list_domains(db: Database, *, name: str | None = None,
                       enabled: bool | None = None) -> list[Domain]:
    query = _filter(select(Domain).order_by(Domain.name), Domain, name=name, enabled=enabled)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def create_domain(db: Database, values: Mapping[str, Any]) -> Domain:
    domain = Domain(**values)
    async with db.transaction() as session:
        if await session.scalar(select(Domain.id).where(Domain.name == domain.name)):
            raise DuplicateDomain(name=domain.name)
        session.add(domain)
        await _flush(session, DuplicateDomain(name=domain.name))
    return domain


async def update_domain(db: Database, domain_id: str, changes: Mapping[str, Any]) -> Domain:
    async with db.transaction() as session:
        domain = await session.get(Domain, domain_id)
        if domain is None:
            raise DomainNotFound(domain_id=domain_id)
        if changes.get("name", domain.name) != domain.name and await session.scalar(
                select(Domain.id).where(Domain.name == changes["name"])):
            raise DuplicateDomain(name=changes["name"])
        _apply(domain, changes)
        await _flush(session, DuplicateDomain(name=domain.name))
    return domain


async def delete_domain(db: Database, domain_id: str) -> tuple[list[str], list[str]]:
    """Remove the domain and everything in it: its users, groups and projects and
    every assignment naming them. Returns the ids of the (users, projects) removed."""
    async with db.transaction() as session:
        domain = await session.get(Domain, domain_id)
        if domain is None:
            raise DomainNotFound(domain_id=domain_id)
        user_ids = list(await session.scalars(select(User.id).where(
            User.domain_id == domain_id)))
        project_ids = list(await session.scalars(select(Project.id).where(
            Project.domain_id == domain_id)))
        group_ids = list(await session.scalars(select(Group.id).where(
            Group.domain_id == domain_id)))
        await _forget_users(session, user_ids)
        await _forget_projects(session, project_ids)
        await _forget_groups(session, group_ids)
        await session.execute(delete(ScopedAssignment).where(
            ScopedAssignment.kind.in_(("UserDomain", "GroupDomain")),
            ScopedAssignment.target_id == domain_id))
        await session.execute(delete(User).where(User.id.in_(user_ids)))
        await session.execute(delete(Project).where(Project.id.in_(project_ids)))
        await session.execute(delete(Group).where(Group.id.in_(group_ids)))
        await session.delete(domain)
    return user_ids, project_ids


# --- groups -----------------------------------------------------------------

class GroupNotFound(exceptions.NotFound):
    msg_fmt = "Could not find group: %(group_id)s."


class DuplicateGroup(exceptions.Conflict):
    msg_fmt = ("Conflict occurred attempting to store group - Duplicate entry found "
               "with name %(name)s at domain ID %(domain_id)s.")


class NotInGroup(exceptions.NotFound):
    msg_fmt = "User %(user_id)s is not a member of group %(group_id)s."


async def get_group(db: Database, group_id: str) -> Group:
    async with db.transaction() as session:
        return await _group(session, group_id)


async def list_groups(db: Database, *, name: str | None = None,
                      domain_id: str | None = None) -> list[Group]:
    query = _filter(select(Group).order_by(Group.name, Group.id), Group, name=name,
                    domain_id=domain_id)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def create_group(db: Database, values: Mapping[str, Any]) -> Group:
    group = Group(**values)
    async with db.transaction() as session:
        await _claim_group_name(session, group.name, group.domain_id)
        session.add(group)
        await _flush(session, DuplicateGroup(name=group.name, domain_id=group.domain_id))
    return group


async def update_group(db: Database, group_id: str, changes: Mapping[str, Any]) -> Group:
    async with db.transaction() as session:
        group = await _group(session, group_id)
        if changes.get("name", group.name) != group.name:
            await _claim_group_name(session, changes["name"], group.domain_id)
        _apply(group, changes)
        await _flush(session, DuplicateGroup(name=group.name, domain_id=group.domain_id))
    return group


async def delete_group(db: Database, group_id: str) -> list[str]:
    """Remove the group, its memberships and assignments; returns its members' ids."""
    async with db.transaction() as session:
        group = await _group(session, group_id)
        members = list(await session.scalars(select(GroupMembership.user_id).where(
            GroupMembership.group_id == group_id)))
        await _forget_groups(session, [group_id])
        await session.delete(group)
    return members


async def add_member(db: Database, group_id: str, user_id: str) -> None:
    try:
        async with db.transaction() as session:
            await _group(session, group_id)
            await _user(session, user_id)
            if await session.get(GroupMembership, (group_id, user_id)) is None:
                session.add(GroupMembership(group_id=group_id, user_id=user_id))
    except IntegrityError:
        pass  # added concurrently


async def check_member(db: Database, group_id: str, user_id: str) -> None:
    async with db.transaction() as session:
        await _group(session, group_id)
        await _user(session, user_id)
        if await session.get(GroupMembership, (group_id, user_id)) is None:
            raise NotInGroup(group_id=group_id, user_id=user_id)


async def remove_member(db: Database, group_id: str, user_id: str) -> None:
    async with db.transaction() as session:
        await _group(session, group_id)
        await _user(session, user_id)
        membership = await session.get(GroupMembership, (group_id, user_id))
        if membership is None:
            raise NotInGroup(group_id=group_id, user_id=user_id)
        await session.delete(membership)


async def members_of(db: Database, group_id: str) -> list[User]:
    query = (select(User).join(GroupMembership, GroupMembership.user_id == User.id)
             .where(GroupMembership.group_id == group_id).order_by(User.name))
    async with db.transaction() as session:
        await _group(session, group_id)
        return list(await session.scalars(query))


async def groups_of(db: Database, user_id: str) -> list[Group]:
    query = (select(Group).join(GroupMembership, GroupMembership.group_id == Group.id)
             .where(GroupMembership.user_id == user_id).order_by(Group.name))
    async with db.transaction() as session:
        await _user(session, user_id)
        return list(await session.scalars(query))


async def _group(session: AsyncSession, group_id: str) -> Group:
    group = await session.get(Group, group_id)
    if group is None:
        raise GroupNotFound(group_id=group_id)
    return group


async def _claim_group_name(session: AsyncSession, name: str, domain_id: str) -> None:
    if await session.scalar(select(Group.id).where(Group.name == name,
                                                   Group.domain_id == domain_id)):
        raise DuplicateGroup(name=name, domain_id=domain_id)


async def _forget_groups(session: AsyncSession, group_ids: list[str]) -> None:
    await session.execute(delete(GroupMembership).where(
        GroupMembership.group_id.in_(group_ids)))
    await session.execute(delete(ScopedAssignment).where(
        ScopedAssignment.kind.in_(GROUP_KINDS), ScopedAssignment.actor_id.in_(group_ids)))


# --- assignments of every kind ----------------------------------------------

USER_KINDS = ("UserDomain", "UserSystem")
GROUP_KINDS = ("GroupProject", "GroupDomain", "GroupSystem")
SYSTEM = "all"


@dataclass(frozen=True)
class Assignment:
    """Who (a user or group) holds which role where (a project, domain or the system)."""

    actor: str  # "user" or "group"
    actor_id: str
    scope: str  # "project", "domain" or "system"
    target_id: str  # the project or domain id; "all" for the system
    role_id: str

    @property
    def kind(self) -> str:
        return self.actor.capitalize() + self.scope.capitalize()


class ScopedAssignmentNotFound(exceptions.NotFound):
    msg_fmt = "Could not find role assignment with role: %(role_id)s, %(where)s."


async def put_assignment(db: Database, a: Assignment) -> bool:
    """Record an assignment other than user-on-project; False when it existed."""
    try:
        async with db.transaction() as session:
            await _check_assignment_parts(session, a)
            key = (a.kind, a.actor_id, a.target_id, a.role_id)
            if await session.get(ScopedAssignment, key):
                return False
            session.add(ScopedAssignment(kind=a.kind, actor_id=a.actor_id,
                                         target_id=a.target_id, role_id=a.role_id))
    except IntegrityError:
        return False
    return True


async def has_assignment(db: Database, a: Assignment) -> bool:
    async with db.transaction() as session:
        await _check_assignment_parts(session, a)
        key = (a.kind, a.actor_id, a.target_id, a.role_id)
        return await session.get(ScopedAssignment, key) is not None


async def remove_assignment(db: Database, a: Assignment) -> None:
    async with db.transaction() as session:
        await _check_assignment_parts(session, a)
        found = await session.get(ScopedAssignment,
                                  (a.kind, a.actor_id, a.target_id, a.role_id))
        if found is None:
            raise ScopedAssignmentNotFound(
                role_id=a.role_id, where=f"{a.actor}: {a.actor_id}, {a.scope}: {a.target_id}")
        await session.delete(found)


async def _check_assignment_parts(session: AsyncSession, a: Assignment) -> None:
    if a.actor == "user":
        await _user(session, a.actor_id)
    else:
        await _group(session, a.actor_id)
    if a.scope == "project":
        await _project(session, a.target_id)
    elif a.scope == "domain" and await session.get(Domain, a.target_id) is None:
        raise DomainNotFound(domain_id=a.target_id)
    await _role(session, a.role_id)


async def list_assignments(db: Database) -> list[Assignment]:
    """Every assignment of every kind, direct (groups not expanded)."""
    async with db.transaction() as session:
        direct = await session.execute(select(
            RoleAssignment.user_id, RoleAssignment.project_id, RoleAssignment.role_id))
        scoped = await session.scalars(select(ScopedAssignment))
        found = [Assignment("user", u, "project", p, r) for u, p, r in direct]
        for row in scoped:
            actor = "user" if row.kind.startswith("User") else "group"
            found.append(Assignment(actor, row.actor_id, row.kind[len(actor):].lower(),
                                    row.target_id, row.role_id))
    return found


async def memberships(db: Database) -> dict[str, list[str]]:
    """group id -> its members' user ids."""
    async with db.transaction() as session:
        rows = await session.execute(select(GroupMembership.group_id,
                                            GroupMembership.user_id))
        found: dict[str, list[str]] = {}
        for group_id, user_id in rows:
            found.setdefault(group_id, []).append(user_id)
    return found


async def effective_roles(db: Database, user_id: str, scope: str, target_id: str
                          ) -> list[Role]:
    """The roles the user holds on a project, domain or the system, directly or
    through a group."""
    groups = select(GroupMembership.group_id).where(GroupMembership.user_id == user_id)
    via_scoped = select(ScopedAssignment.role_id).where(
        ScopedAssignment.target_id == target_id,
        or_((ScopedAssignment.kind == "User" + scope.capitalize())
            & (ScopedAssignment.actor_id == user_id),
            (ScopedAssignment.kind == "Group" + scope.capitalize())
            & ScopedAssignment.actor_id.in_(groups)))
    held: Any = via_scoped
    if scope == "project":
        held = via_scoped.union(select(RoleAssignment.role_id).where(
            RoleAssignment.user_id == user_id, RoleAssignment.project_id == target_id))
    query = select(Role).where(Role.id.in_(held)).order_by(Role.name)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def projects_via_groups(db: Database, user_id: str) -> list[Project]:
    groups = select(GroupMembership.group_id).where(GroupMembership.user_id == user_id)
    held = select(ScopedAssignment.target_id).where(
        ScopedAssignment.kind == "GroupProject", ScopedAssignment.actor_id.in_(groups))
    query = select(Project).where(Project.id.in_(held)).order_by(Project.name)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def records_by_id(db: Database, model: type[M], ids: set[str]) -> dict[str, M]:
    """The records of `model` with those ids (missing ones left out)."""
    if not ids:
        return {}
    column = model.__table__.c["id"]
    async with db.transaction() as session:
        found = await session.scalars(select(model).where(column.in_(ids)))
        return {str(inspect(r).identity[0]): r  # type: ignore[index]
                for r in found}


# --- application credentials ------------------------------------------------

class ApplicationCredentialNotFound(exceptions.NotFound):
    msg_fmt = "Could not find Application Credential: %(app_cred_id)s."


class DuplicateApplicationCredential(exceptions.Conflict):
    msg_fmt = ("Conflict occurred attempting to store application_credential - "
               "Duplicate entry found with name %(name)s.")


async def create_app_cred(db: Database, values: Mapping[str, Any]) -> ApplicationCredential:
    cred = ApplicationCredential(**values)
    async with db.transaction() as session:
        await _user(session, cred.user_id)
        if await session.scalar(select(ApplicationCredential.id).where(
                ApplicationCredential.user_id == cred.user_id,
                ApplicationCredential.name == cred.name)):
            raise DuplicateApplicationCredential(name=cred.name)
        session.add(cred)
        await _flush(session, DuplicateApplicationCredential(name=cred.name))
    return cred


async def get_app_cred(db: Database, app_cred_id: str, user_id: str | None = None
                       ) -> ApplicationCredential:
    """The credential; not found also when it belongs to another user than `user_id`."""
    async with db.transaction() as session:
        cred = await session.get(ApplicationCredential, app_cred_id)
    if cred is None or user_id not in (None, cred.user_id):
        raise ApplicationCredentialNotFound(app_cred_id=app_cred_id)
    return cred


async def list_app_creds(db: Database, user_id: str, name: str | None = None
                         ) -> list[ApplicationCredential]:
    query = _filter(select(ApplicationCredential).where(
        ApplicationCredential.user_id == user_id).order_by(ApplicationCredential.name),
        ApplicationCredential, name=name)
    async with db.transaction() as session:
        return list(await session.scalars(query))


async def delete_app_cred(db: Database, app_cred_id: str, user_id: str) -> None:
    async with db.transaction() as session:
        cred = await session.get(ApplicationCredential, app_cred_id)
        if cred is None or cred.user_id != user_id:
            raise ApplicationCredentialNotFound(app_cred_id=app_cred_id)
        await session.delete(cred)


# --- revocation events ------------------------------------------------------

async def add_revocations(db: Database, events: list[Mapping[str, Any]],
                          prune_before: dt.datetime) -> None:
    """Record revocation events, dropping those older than any token still alive."""
    async with db.transaction() as session:
        await session.execute(delete(RevocationEvent).where(
            RevocationEvent.revoked_at < prune_before))
        session.add_all(RevocationEvent(**e) for e in events)


RevocationRow = tuple[dt.datetime, str | None, str | None, str | None, str | None]


async def list_revocations(db: Database, since: dt.datetime) -> list[RevocationRow]:
    """(issued_before, user_id, project_id, audit_id, app_cred_id) of the events
    recorded since `since`."""
    query = select(RevocationEvent.issued_before, RevocationEvent.user_id,
                   RevocationEvent.project_id, RevocationEvent.audit_id,
                   RevocationEvent.app_cred_id).where(RevocationEvent.revoked_at >= since)
    async with db.transaction() as session:
        return [(r[0], r[1], r[2], r[3], r[4]) for r in await session.execute(query)]


# --- shared -----------------------------------------------------------------

def _filter(query: Any, model: type[M], **equals: Any) -> Any:
    """Add `column == value` for every filter that was given (not None)."""
    for column, value in equals.items():
        if value is not None:
            query = query.where(getattr(model, column) == value)
    return query


async def _flush(session: AsyncSession, duplicate: exceptions.Conflict) -> None:
    """Write pending rows now, so a unique constraint lost to a concurrent writer
    surfaces as the conflict the caller names rather than as a database error."""
    try:
        await session.flush()
    except IntegrityError:
        raise duplicate from None


def _apply(record: Base, changes: Mapping[str, Any]) -> None:
    for column, value in changes.items():
        setattr(record, column, value)
