"""Quotas as Nova keeps them: limits per user, project and quota class, usage, checks.

A limit resolves as: the user's own limit (os-quota-sets ?user_id=) > the
project's (os-quota-sets) > quota class "default" (os-quota-class-sets) >
the `[quota]` option. -1 is unlimited. Usage is counted from the rows
themselves; creates that count against a quota check inside their insert's
transaction under the project's lock (db/quotas.lock_project), given the pure
`admit_*` functions below to decide with.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from novalet import config, exceptions
from novalet.db import quotas as db_quotas
from novalet.db.engine import Database
from novalet.db.limits import INT_MAX
from novalet.db.quotas import QuotaRecords

UNLIMITED = -1
MAX_LIMIT = INT_MAX  # limits are 32-bit integers in the database

# Every resource, in Nova's order; the network ones leave the API at 2.36, the
# personality ones at 2.57.
RESOURCES: tuple[str, ...] = (
    "instances", "cores", "ram", "metadata_items", "injected_files",
    "injected_file_content_bytes", "injected_file_path_length", "key_pairs",
    "server_groups", "server_group_members",
    "floating_ips", "fixed_ips", "security_groups", "security_group_rules")
NETWORK_RESOURCES = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
# Limits only the network API shows and sets (its `quotas` extension), stored beside
# Nova's in the same tables: os-quota-sets neither shows nor accepts them.
NETWORK_API_RESOURCES = ("networks", "ports", "routers")
ALL_RESOURCES = RESOURCES + NETWORK_API_RESOURCES
PERSONALITY_RESOURCES = ("injected_files", "injected_file_content_bytes",
                         "injected_file_path_length")
# Resources counted per user as well as per project (the rest are per project,
# or per instance / per request like metadata_items).
USER_COUNTED = ("instances", "cores", "ram", "key_pairs")


class TooManyInstances(exceptions.QuotaExceeded):
    msg_fmt = ("Quota exceeded for %(overs)s: Requested %(req)s, but already used "
               "%(used)s of %(allowed)s %(overs)s")


class MetadataLimitExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Maximum number of metadata items exceeds %(allowed)d"


class ImageMetadataLimitExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Image metadata limit exceeded"


class OnsetFileLimitExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Personality file limit exceeded"


class OnsetFilePathLimitExceeded(OnsetFileLimitExceeded):
    msg_fmt = "Personality file path exceeds maximum %(allowed)s"


class OnsetFileContentLimitExceeded(OnsetFileLimitExceeded):
    msg_fmt = "Personality file content exceeds maximum %(allowed)s"


class KeypairLimitExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Quota exceeded, too many key pairs."


class ServerGroupLimitExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Quota exceeded, too many server groups."


class ServerGroupMembersExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Quota exceeded, too many servers in group"


class TooManyServersRequested(exceptions.Invalid):
    msg_fmt = "One request can create at most %(max)s servers; min_count is %(min)s."


class QuotaLimitInvalid(exceptions.Invalid):
    msg_fmt = "%(reason)s"


def _over(limit: int, used: int, requested: int) -> bool:
    return limit != UNLIMITED and used + requested > limit


@dataclass(frozen=True)
class Limits:
    """Resolved limits of a project and of one of its users."""

    project: dict[str, int]
    user: dict[str, int]


class QuotaEngine:
    """Quota limits and checks for every front-end; configuration gives the defaults."""

    def __init__(self, db: Database, conf: config.Config | None = None) -> None:
        self.db = db
        self.conf = conf or config.Config()

    # --- limits -------------------------------------------------------------

    def config_defaults(self) -> dict[str, int]:
        return {r: self._option(r) for r in ALL_RESOURCES}

    def _option(self, resource: str) -> int:
        return int(self.conf.get("quota", resource))

    def resolve(self, records: QuotaRecords) -> Limits:
        """Project limits (project > class default > config) and user limits (user >
        project) from what the database holds."""
        project = {**self.config_defaults(), **_known(records.class_limits),
                   **_known(records.project_limits)}
        return Limits(project=project, user={**project, **_known(records.user_limits)})

    async def defaults(self) -> dict[str, int]:
        """The limits of a project that has none of its own."""
        return await self.class_limits(db_quotas.DEFAULT_CLASS)

    async def class_limits(self, class_name: str) -> dict[str, int]:
        """A quota class's limits; resources it doesn't set fall back to config."""
        return {**self.config_defaults(),
                **_known(await db_quotas.class_limits(self.db, class_name))}

    async def set_class_limits(self, class_name: str, values: Mapping[str, int]
                               ) -> dict[str, int]:
        _check_values(values)
        await db_quotas.set_class_limits(self.db, class_name, values)
        return await self.class_limits(class_name)

    async def limits(self, project_id: str, user_id: str | None = None) -> dict[str, int]:
        """The limits that apply to project_id (to user_id in it, when given)."""
        resolved = self.resolve(await db_quotas.records(self.db, project_id, user_id))
        return resolved.user if user_id is not None else resolved.project

    async def detail(self, project_id: str, user_id: str | None = None
                     ) -> dict[str, dict[str, int]]:
        """Per resource: limit, in_use and reserved (always 0: usage is counted)."""
        records = await db_quotas.records(self.db, project_id, user_id)
        resolved = self.resolve(records)
        limits = resolved.user if user_id is not None else resolved.project
        usage = records.user_usage if user_id is not None else records.project_usage
        return {r: {"limit": limits[r], "in_use": int(usage.get(r, 0)), "reserved": 0}
                for r in RESOURCES}

    async def usage(self, project_id: str, user_id: str | None = None) -> dict[str, int]:
        records = await db_quotas.records(self.db, project_id, user_id)
        return records.user_usage if user_id is not None else records.project_usage

    async def update(self, project_id: str, user_id: str | None,
                     values: Mapping[str, int], force: bool = False) -> None:
        """Set the project's (or user's) limits. Unless forced, a limit below what is
        in use is refused, and a user's limit may not exceed its project's."""
        _check_values(values)
        if not force:
            records = await db_quotas.records(self.db, project_id, user_id)
            resolved = self.resolve(records)
            usage = records.user_usage if user_id is not None else records.project_usage
            for resource, limit in values.items():
                minimum = int(usage.get(resource, 0))
                if limit != UNLIMITED and limit < minimum:
                    raise QuotaLimitInvalid(reason=(
                        f"Quota limit {limit} for {resource} must be greater than or "
                        f"equal to already used and reserved {minimum}."))
                maximum = resolved.project[resource]
                if user_id is not None and maximum != UNLIMITED and limit > maximum:
                    raise QuotaLimitInvalid(reason=(
                        f"Quota limit {limit} for {resource} must be less than or equal "
                        f"to {maximum}."))
        if user_id is None:
            await db_quotas.set_project_limits(self.db, project_id, values)
        else:
            await db_quotas.set_user_limits(self.db, project_id, user_id, values)

    async def delete(self, project_id: str, user_id: str | None = None) -> None:
        """Back to the defaults: forget the project's limits (and its users'), or one
        user's."""
        if user_id is None:
            await db_quotas.delete_project_limits(self.db, project_id)
        else:
            await db_quotas.delete_user_limits(self.db, project_id, user_id)

    # --- checks inside a create's transaction -----------------------------

    def admit_instances(self, min_count: int, max_count: int, vcpus: int, memory_mb: int
                        ) -> InstanceAdmission:
        """A decision for db/instances.create: how many of max_count instances of
        this size fit (at least min_count, else TooManyInstances, as Nova words it)."""
        return InstanceAdmission(self, min_count, max_count,
                                 {"instances": 1, "cores": vcpus, "ram": memory_mb})

    def admit_keypair(self) -> KeypairAdmission:
        """A decision for db/keypairs.create: one more key pair for the user, or
        KeypairLimitExceeded."""
        return KeypairAdmission(self)

    def admit_floating_ip(self) -> ProjectCountAdmission:
        """For db/network.allocate_floating_ip: one more floating IP for the project."""
        return ProjectCountAdmission(self, "floating_ips", FloatingIpLimitExceeded)

    def admit_security_group(self) -> ProjectCountAdmission:
        """For db/security_groups.create_group: one more group for the project."""
        return ProjectCountAdmission(self, "security_groups", SecurityGroupLimitExceeded)

    async def admit_security_group_rule(self, project_id: str) -> Callable[[int], None]:
        """For db/security_groups.create_rule: the number of rules a group is left
        with must fit security_group_rules (a limit per group, as nova-network had)."""
        limit = (await self.limits(project_id))["security_group_rules"]

        def admit(count: int) -> None:
            if _over(limit, 0, count):
                raise SecurityGroupRuleLimitExceeded()
        return admit

    def admit_resize(self, vcpus_delta: int, ram_delta: int) -> ResizeAdmission:
        """A decision for the transaction that starts a resize (db/instances.update):
        the cores and ram the new flavor adds must fit."""
        return ResizeAdmission(self, {"cores": vcpus_delta, "ram": ram_delta})

    # --- checks of one request --------------------------------------------

    async def check_metadata(self, project_id: str, count: int) -> None:
        """MetadataLimitExceeded (403) when a server would have more than
        metadata_items metadata items."""
        limit = (await self.limits(project_id))["metadata_items"]
        if _over(limit, 0, count):
            raise MetadataLimitExceeded(allowed=limit)

    async def check_image_metadata(self, project_id: str, count: int) -> None:
        """ImageMetadataLimitExceeded (403) when an image would have more than
        metadata_items properties: a snapshot's (Nova counts createImage's against
        that quota) or one set through the image metadata API."""
        limit = (await self.limits(project_id))["metadata_items"]
        if _over(limit, 0, count):
            raise ImageMetadataLimitExceeded()

    async def admit_metadata(self, project_id: str) -> Callable[[int], None]:
        """For db/instances.set_metadata: the number of items a server is left with
        must fit metadata_items (MetadataLimitExceeded, 403)."""
        limit = (await self.limits(project_id))["metadata_items"]

        def admit(count: int) -> None:
            if _over(limit, 0, count):
                raise MetadataLimitExceeded(allowed=limit)
        return admit

    async def check_personality(self, project_id: str,
                                files: Iterable[Mapping[str, Any]]) -> None:
        """Injected files of a create or rebuild against injected_files and the
        content (decoded bytes) and path length limits."""
        files = list(files)
        if not files:
            return
        limits = await self.limits(project_id)
        if _over(limits["injected_files"], 0, len(files)):
            raise OnsetFileLimitExceeded()
        for item in files:
            if not isinstance(item, Mapping):  # the schema's business; never a 500 here
                continue
            path_limit = limits["injected_file_path_length"]
            if _over(path_limit, 0, len(str(item.get("path", "")))):
                raise OnsetFilePathLimitExceeded(allowed=path_limit)
            content_limit = limits["injected_file_content_bytes"]
            if _over(content_limit, 0, _decoded_size(str(item.get("contents", "")))):
                raise OnsetFileContentLimitExceeded(allowed=content_limit)

    async def check_resize(self, project_id: str, user_id: str | None, vcpus_delta: int,
                           ram_delta: int) -> None:
        """A resize to a larger flavor must fit the cores and ram still free (an early
        answer; admit_resize decides again under the lock)."""
        deltas = {"cores": vcpus_delta, "ram": ram_delta}
        if all(d <= 0 for d in deltas.values()):
            return
        records = await db_quotas.records(self.db, project_id, user_id)
        _check_growth(self.resolve(records), records, deltas)

    async def check_server_group(self, project_id: str, groups_in_use: int) -> None:
        """For os-server-groups create: one more group must fit server_groups
        (ServerGroupLimitExceeded, 403). groups_in_use: the project's groups now;
        count and insert under db/quotas.lock_project to be race-free."""
        limit = (await self.limits(project_id))["server_groups"]
        if _over(limit, groups_in_use, 1):
            raise ServerGroupLimitExceeded()

    async def check_group_members(self, project_id: str, members_now: int,
                                  adding: int) -> None:
        """For a server create with a group hint: the group's members plus `adding`
        must fit server_group_members (ServerGroupMembersExceeded, 403)."""
        limit = (await self.limits(project_id))["server_group_members"]
        if _over(limit, members_now, adding):
            raise ServerGroupMembersExceeded()


@dataclass(frozen=True)
class InstanceAdmission:
    """How many of max_count instances (each using `each`) fit, decided under the
    project's quota lock (db/quotas.admit_locked)."""

    engine: QuotaEngine
    min_count: int
    max_count: int
    each: dict[str, int]

    def counted(self, records: QuotaRecords) -> Collection[str]:
        limits = self.engine.resolve(records)
        return [r for r, amount in self.each.items() if amount and (
            limits.project[r] != UNLIMITED or limits.user[r] != UNLIMITED)]

    def __call__(self, records: QuotaRecords) -> int:
        limits = self.engine.resolve(records)
        fits = self.max_count
        for scope_limits, usage in ((limits.project, records.project_usage),
                                    (limits.user, records.user_usage)):
            for resource, amount in self.each.items():
                limit = scope_limits[resource]
                if limit == UNLIMITED or amount == 0:
                    continue
                room = max(0, (limit - int(usage.get(resource, 0))) // amount)
                fits = min(fits, room)
        if fits >= self.min_count:
            return fits
        over_quota = _too_many(limits, records, self.each, self.min_count)
        if over_quota is not None:
            raise over_quota
        # Within every quota, but past what one request may make (max_count capped).
        raise TooManyServersRequested(max=self.max_count, min=self.min_count)


@dataclass(frozen=True)
class ResizeAdmission:
    """The growth of a resize (cores, ram deltas), decided under the quota lock."""

    engine: QuotaEngine
    deltas: dict[str, int]

    def counted(self, records: QuotaRecords) -> Collection[str]:
        limits = self.engine.resolve(records)
        return [r for r, d in self.deltas.items() if d > 0 and (
            limits.project[r] != UNLIMITED or limits.user[r] != UNLIMITED)]

    def __call__(self, records: QuotaRecords) -> None:
        _check_growth(self.engine.resolve(records), records, self.deltas)


@dataclass(frozen=True)
class KeypairAdmission:
    """One more key pair for the user, decided under the quota lock."""

    engine: QuotaEngine

    def counted(self, records: QuotaRecords) -> Collection[str]:
        return [] if self.engine.resolve(records).user["key_pairs"] == UNLIMITED \
            else ["key_pairs"]

    def __call__(self, records: QuotaRecords) -> None:
        limit = self.engine.resolve(records).user["key_pairs"]
        if _over(limit, int(records.user_usage.get("key_pairs", 0)), 1):
            raise KeypairLimitExceeded()


class FloatingIpLimitExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Maximum number of floating IPs exceeded"


class SecurityGroupLimitExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Quota exceeded, too many security groups."


class SecurityGroupRuleLimitExceeded(exceptions.QuotaExceeded):
    msg_fmt = "Quota exceeded, too many security group rules."


@dataclass(frozen=True)
class ProjectCountAdmission:
    """One more of a resource counted per project (floating IPs, security groups),
    decided under the project's quota lock."""

    engine: QuotaEngine
    resource: str
    error: type[exceptions.QuotaExceeded]

    def counted(self, records: QuotaRecords) -> Collection[str]:
        limit = self.engine.resolve(records).project[self.resource]
        return [] if limit == UNLIMITED else [self.resource]

    def __call__(self, records: QuotaRecords) -> None:
        limit = self.engine.resolve(records).project[self.resource]
        if _over(limit, int(records.project_usage.get(self.resource, 0)), 1):
            raise self.error()


def _check_growth(limits: Limits, records: QuotaRecords, deltas: dict[str, int]) -> None:
    """TooManyInstances when growing usage by deltas passes a project or user limit."""
    for scope_limits, usage in ((limits.project, records.project_usage),
                                (limits.user, records.user_usage)):
        overs = [r for r, d in deltas.items() if d > 0 and
                 _over(scope_limits[r], int(usage.get(r, 0)), d)]
        if overs:
            raise TooManyInstances(
                overs=", ".join(overs), req=", ".join(str(deltas[r]) for r in overs),
                used=", ".join(str(usage.get(r, 0)) for r in overs),
                allowed=", ".join(str(scope_limits[r]) for r in overs))


def _known(values: Mapping[str, int]) -> dict[str, int]:
    return {r: v for r, v in values.items() if r in ALL_RESOURCES}


def _check_values(values: Mapping[str, int]) -> None:
    for resource, limit in values.items():
        if resource not in ALL_RESOURCES:
            raise QuotaLimitInvalid(reason=f"Unknown quota resources {resource}.")
        if limit < UNLIMITED:
            raise QuotaLimitInvalid(
                reason=f"Quota limit {limit} for {resource} must be -1 or greater.")
        if limit > MAX_LIMIT:
            raise QuotaLimitInvalid(reason=f"Quota limit {limit} for {resource} must be "
                                    f"less than or equal to {MAX_LIMIT}.")


def _too_many(limits: Limits, records: QuotaRecords, per_instance: dict[str, int],
              count: int) -> TooManyInstances | None:
    """Nova's message for the first scope (project, then user) min_count overflows;
    None when it overflows none."""
    for scope_limits, usage in ((limits.project, records.project_usage),
                                (limits.user, records.user_usage)):
        overs = [r for r, each in per_instance.items()
                 if _over(scope_limits[r], int(usage.get(r, 0)), each * count)]
        if overs:
            return TooManyInstances(
                overs=", ".join(overs),
                req=", ".join(str(per_instance[r] * count) for r in overs),
                used=", ".join(str(usage.get(r, 0)) for r in overs),
                allowed=", ".join(str(scope_limits[r]) for r in overs))
    return None


def _decoded_size(contents: str) -> int:
    """Bytes of base64 content once decoded (Nova measures the decoded file)."""
    stripped = contents.strip().rstrip("=")
    return len(stripped) * 3 // 4
