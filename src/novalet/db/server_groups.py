"""Database access for server groups, their members, and where the members run."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.db import quotas as db_quotas
from novalet.db.engine import Database, rows_matched
from novalet.db.models import Allocation, ResourceProvider, ServerGroup, ServerGroupMember


class ServerGroupNotFound(exceptions.NotFound):
    msg_fmt = "Instance group %(group_uuid)s could not be found."


async def create(db: Database, group: ServerGroup,
                 admit: Callable[[int], None] | None = None) -> ServerGroup:
    """Insert the group. With `admit` (the server_groups quota), first take the
    project's quota lock and count its groups in this transaction; admit raises
    when one more doesn't fit."""
    async with db.transaction() as s:
        if admit is not None:
            await db_quotas.lock_project(s, group.project_id)
            admit(await _count(s, group.project_id))
        s.add(group)
    return group


async def count_groups(db: Database, project_id: str) -> int:
    """The project's server groups (the server_groups quota's usage)."""
    async with db.transaction() as s:
        return await _count(s, project_id)


async def _count(s: AsyncSession, project_id: str) -> int:
    return int((await s.execute(select(func.count()).select_from(ServerGroup).where(
        ServerGroup.project_id == project_id))).scalar_one())


async def get(db: Database, uuid: str, project_id: str | None = None) -> ServerGroup:
    """The group; ServerGroupNotFound when missing or (project_id given) of another project."""
    async with db.transaction() as s:
        return await _get(s, uuid, project_id)


async def _get(s: AsyncSession, uuid: str, project_id: str | None = None) -> ServerGroup:
    query = select(ServerGroup).where(ServerGroup.uuid == uuid)
    if project_id is not None:
        query = query.where(ServerGroup.project_id == project_id)
    group = (await s.execute(query)).scalar_one_or_none()
    if group is None:
        raise ServerGroupNotFound(group_uuid=uuid)
    return group


async def list_groups(db: Database, project_id: str | None, limit: int | None,
                      offset: int) -> list[ServerGroup]:
    """Groups of one project (None: of every project), oldest first."""
    async with db.transaction() as s:
        query = select(ServerGroup).order_by(ServerGroup.id)
        if project_id is not None:
            query = query.where(ServerGroup.project_id == project_id)
        if offset:
            query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return list((await s.execute(query)).scalars())


async def delete_group(db: Database, uuid: str, project_id: str | None = None) -> None:
    async with db.transaction() as s:
        group = await _get(s, uuid, project_id)
        await s.execute(delete(ServerGroupMember).where(ServerGroupMember.group_id == group.id))
        await s.execute(delete(ServerGroup).where(ServerGroup.id == group.id))


async def add_members(s: AsyncSession, group_uuid: str, instance_uuids: list[str],
                      admit: Callable[[int], None] | None = None) -> None:
    """Make the instances members, inside the caller's transaction (the instance create,
    which holds the project's quota lock), so a server never exists outside the group
    it was booted into. `admit` (the server_group_members quota) gets the members the
    group would have and raises when that is too many."""
    group = await _get(s, group_uuid)
    if admit is not None:
        members_now = (await s.execute(select(func.count()).select_from(ServerGroupMember)
                                       .where(ServerGroupMember.group_id == group.id))
                       ).scalar_one()
        admit(int(members_now) + len(instance_uuids))
    s.add_all([ServerGroupMember(group_id=group.id, instance_uuid=uuid)
               for uuid in instance_uuids])


async def remove_member(s: AsyncSession, instance_uuid: str) -> None:
    """Inside the caller's transaction (the instance destroy)."""
    await s.execute(delete(ServerGroupMember).where(
        ServerGroupMember.instance_uuid == instance_uuid))


async def group_uuids_of(db: Database, instance_uuids: list[str]) -> dict[str, list[str]]:
    """{instance uuid: [uuid of its group]} in one query (a member of no group: absent)."""
    async with db.transaction() as s:
        rows = await s.execute(
            select(ServerGroupMember.instance_uuid, ServerGroup.uuid)
            .join(ServerGroup, ServerGroup.id == ServerGroupMember.group_id)
            .where(ServerGroupMember.instance_uuid.in_(instance_uuids)))
        return {instance: [group] for instance, group in rows}


async def member_hosts(db: Database, group_uuid: str, exclude: list[str]
                       ) -> tuple[int, dict[str, int]]:
    """The group's generation and {host: members placed there}, in one read. A member
    counts where placement holds its claim, which the scheduler writes before anyone
    records the instance's host; `exclude` (the request's own instances) never count."""
    async with db.transaction() as s:
        generation = (await s.execute(select(ServerGroup.generation).where(
            ServerGroup.uuid == group_uuid))).scalar_one_or_none()
        if generation is None:
            raise ServerGroupNotFound(group_uuid=group_uuid)
        # A member holds one allocation per resource class: count members, not rows.
        rows = await s.execute(
            select(ResourceProvider.host, func.count(Allocation.consumer_id.distinct()))
            .select_from(ServerGroupMember)
            .join(ServerGroup, ServerGroup.id == ServerGroupMember.group_id)
            .join(Allocation, Allocation.consumer_id == ServerGroupMember.instance_uuid)
            .join(ResourceProvider, ResourceProvider.uuid == Allocation.provider_uuid)
            .where(ServerGroup.uuid == group_uuid,
                   ServerGroupMember.instance_uuid.not_in(exclude))
            .group_by(ResourceProvider.host))
        return generation, {host: int(count) for host, count in rows}


async def hosts_of_instances(db: Database, instance_uuids: list[str]) -> dict[str, str]:
    """{instance uuid: host} where placement holds claims of these instances (one query;
    an instance with no claim is absent)."""
    if not instance_uuids:
        return {}
    async with db.transaction() as s:
        rows = await s.execute(
            select(Allocation.consumer_id, ResourceProvider.host).distinct()
            .join(ResourceProvider, Allocation.provider_uuid == ResourceProvider.uuid)
            .where(Allocation.consumer_id.in_(instance_uuids)))
        return {uuid: host for uuid, host in rows}


async def bump_generation(s: AsyncSession, group_uuid: str, generation: int) -> bool:
    """Compare-and-swap the group's generation, inside a claim's transaction: False when
    another claim for a member came first (then the caller re-reads and retries)."""
    result = await s.execute(update(ServerGroup).where(
        ServerGroup.uuid == group_uuid, ServerGroup.generation == generation)
        .values(generation=generation + 1))
    return rows_matched(result) == 1
