"""Identity records: users, projects, roles and which user holds which role on which project."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.db.engine import Database
from novalet.db.models import Base, Project, Role, RoleAssignment, User

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
    async with db.transaction() as session:
        user = await _user(session, user_id)
        await session.execute(delete(RoleAssignment).where(RoleAssignment.user_id == user_id))
        await session.delete(user)


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
        await session.execute(
            delete(RoleAssignment).where(RoleAssignment.project_id == project_id))
        await session.delete(project)


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


async def delete_role(db: Database, role_id: str) -> None:
    async with db.transaction() as session:
        role = await _role(session, role_id)
        await session.execute(delete(RoleAssignment).where(RoleAssignment.role_id == role_id))
        await session.delete(role)


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
