"""Server groups: named sets of servers whose policy binds where the scheduler puts them."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.compute.quotas import (QuotaEngine, ServerGroupLimitExceeded,
                                    ServerGroupMembersExceeded)
from novalet.compute.scheduling_group import DEFAULT_MAX_SERVER_PER_HOST, SchedulingGroup
from novalet.db import server_groups as db_groups
from novalet.db.engine import Database
from novalet.db.models import ServerGroup
from novalet.db.server_groups import ServerGroupNotFound

__all__ = ["HARD_POLICIES", "SOFT_POLICIES", "GroupRequest", "InvalidGroupHint", "ServerGroup",
           "ServerGroupNotFound", "ServerGroupService", "check_hints", "scheduling_view"]

# The policies of the base API; the soft ones came with microversion 2.15.
HARD_POLICIES = ("anti-affinity", "affinity")
SOFT_POLICIES = ("soft-anti-affinity", "soft-affinity")


class InvalidGroupHint(exceptions.Invalid):
    msg_fmt = "%(reason)s"


class InvalidGroupRules(exceptions.Invalid):
    msg_fmt = "Invalid input: %(reason)s"


@dataclass
class GroupRequest:
    """A validated create request."""

    name: str
    policy: str
    rules: dict[str, int] = field(default_factory=dict)


class ServerGroupService:
    def __init__(self, db: Database, quotas: QuotaEngine | None = None) -> None:
        self.db = db
        self.quotas = quotas or QuotaEngine(db)

    async def create(self, ctx: RequestContext, req: GroupRequest) -> ServerGroup:
        if req.rules and req.policy != "anti-affinity":
            raise InvalidGroupRules(reason="Only anti-affinity policy supports rules.")
        limit = (await self.quotas.limits(ctx.project_id or ""))["server_groups"]

        def admit(in_use: int) -> None:  # under the project's quota lock
            if 0 <= limit < in_use + 1:
                raise ServerGroupLimitExceeded()

        group = ServerGroup(uuid=str(uuidlib.uuid4()), name=req.name,
                            project_id=ctx.project_id or "", user_id=ctx.user_id or "",
                            policy=req.policy, rules=dict(req.rules), generation=0,
                            members=[])
        return await db_groups.create(self.db, group, admit)

    async def get(self, ctx: RequestContext, uuid: str) -> ServerGroup:
        """The group if ctx may see it; ServerGroupNotFound (404) for another project's."""
        return await db_groups.get(self.db, uuid, None if ctx.is_admin else ctx.project_id)

    async def list_groups(self, ctx: RequestContext, all_projects: bool, limit: int | None,
                          offset: int) -> list[ServerGroup]:
        """ctx's project's groups; every project's when all_projects is asked for and
        os_compute_api:os-server-groups:index:all_projects allows it (otherwise the
        request is ignored, as Nova ignores it)."""
        everyone = all_projects and policy.authorize(
            ctx, "os_compute_api:os-server-groups:index:all_projects")
        project = None if everyone else ctx.project_id or ""
        return await db_groups.list_groups(self.db, project, limit, offset)

    async def delete(self, ctx: RequestContext, uuid: str) -> None:
        await db_groups.delete_group(self.db, uuid, None if ctx.is_admin else ctx.project_id)

    async def group_for_boot(self, ctx: RequestContext, uuid: str) -> ServerGroup:
        """The group a boot's `group` hint names; 400 when ctx may not use it (a group
        of another project reads as missing, as it does everywhere)."""
        try:
            group = await self.get(ctx, uuid)
        except ServerGroupNotFound as exc:
            raise InvalidGroupHint(reason=exc.message) from None
        return group

    async def members_admit(self, ctx: RequestContext) -> Callable[[int], None]:
        """The server_group_members check the instance create runs in its transaction
        (under the project's quota lock): it gets the members the group would have."""
        limit = (await self.quotas.limits(ctx.project_id or ""))["server_group_members"]

        def admit(members_after: int) -> None:
            if 0 <= limit < members_after:
                raise ServerGroupMembersExceeded()

        return admit

    async def groups_of(self, instance_uuids: list[str]) -> dict[str, list[str]]:
        """{instance uuid: [its group's uuid]}, for the server view (2.71)."""
        return await db_groups.group_uuids_of(self.db, instance_uuids)


def check_hints(hints: dict[str, Any]) -> None:
    """The hints the scheduler acts on are well formed: `group` one server group uuid,
    `different_host` and `same_host` a server uuid or a list of them."""
    if "group" in hints and not _is_uuid(hints["group"]):
        raise InvalidGroupHint(reason=_bad("group", hints["group"]))
    for key in ("different_host", "same_host"):
        if key not in hints:
            continue
        value = hints[key]
        values = value if isinstance(value, list) else [value]
        if not values or not all(_is_uuid(v) for v in values):
            raise InvalidGroupHint(reason=_bad(key, value))


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


def _bad(key: str, value: Any) -> str:
    return (f"Invalid input for field/attribute {key}. Value: {value}. "
            f"{value!r} is not a 'uuid'")


def scheduling_view(group: ServerGroup) -> SchedulingGroup:
    """What the scheduler's group filters and weighers need of a group."""
    max_per_host = int(group.rules.get("max_server_per_host", DEFAULT_MAX_SERVER_PER_HOST))
    return SchedulingGroup(uuid=group.uuid, policy=group.policy,
                           max_server_per_host=max_per_host)
