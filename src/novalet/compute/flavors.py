"""Flavors: the sizes servers come in, who may use them, and the defaults a cloud starts with."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from novalet.common.context import RequestContext
from novalet.db import flavors as db_flavors
from novalet.db.engine import Database
from novalet.db.flavors import (
    FlavorAccessExists,
    FlavorAccessNotFound,
    FlavorExists,
    FlavorExtraSpecsNotFound,
    FlavorIdExists,
    FlavorNotFound,
    FlavorQuery,
    MarkerNotFound,
)
from novalet.db.models import Flavor

__all__ = ["DEFAULT_FLAVORS", "Flavor", "FlavorAccessExists", "FlavorAccessNotFound",
           "FlavorExists", "FlavorExtraSpecsNotFound", "FlavorIdExists", "FlavorNotFound",
           "FlavorQuery", "FlavorService", "MarkerNotFound", "NewFlavor", "extra_specs_of",
           "projects_of"]

# Nova's standard flavors: (flavorid, name, memory_mb, vcpus, root_gb).
DEFAULT_FLAVORS: list[tuple[str, str, int, int, int]] = [
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
]


@dataclasses.dataclass
class NewFlavor:
    """What a flavor is created from; flavorid None means a generated UUID."""

    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    flavorid: str | None = None
    ephemeral_gb: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    description: str | None = None

    def values(self) -> dict[str, Any]:
        return {"flavorid": self.flavorid or str(uuid.uuid4()), "name": self.name.strip(),
                "memory_mb": self.memory_mb, "vcpus": self.vcpus, "root_gb": self.root_gb,
                "ephemeral_gb": self.ephemeral_gb, "swap": self.swap,
                "rxtx_factor": self.rxtx_factor, "is_public": self.is_public,
                "description": self.description, "disabled": False}


def extra_specs_of(flavor: Flavor) -> dict[str, str]:
    return {spec.key: spec.value for spec in flavor.extra_specs}


def projects_of(flavor: Flavor) -> list[str]:
    return sorted(p.project_id for p in flavor.projects)


def can_see(ctx: RequestContext, flavor: Flavor) -> bool:
    """Admins see every flavor; others public ones and private ones shared with them."""
    return (ctx.is_admin or flavor.is_public
            or any(p.project_id == ctx.project_id for p in flavor.projects))


class FlavorService:
    """Flavor records with Nova's visibility rules. Returned Flavors are detached
    database rows with `extra_specs` and `projects` loaded; treat them as read-only.

    Reads are cached: flavors are read on every boot and listed by every client,
    and change rarely. A write through this service clears the cache at once;
    writes by another API process show after at most `cache_seconds`.
    """

    def __init__(self, db: Database, cache_seconds: float = 5.0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Any]] = {}

    async def _cached(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        self._cache[key] = (now + self.cache_seconds, value)
        return value

    def _changed(self) -> None:
        self._cache.clear()

    async def create(self, new: NewFlavor) -> Flavor:
        """FlavorExists / FlavorIdExists (409) when the name or id is taken."""
        self._changed()
        return await db_flavors.create(self.db, new.values())

    async def create_defaults(self) -> list[str]:
        """Create whichever of Nova's standard flavors are missing; their ids."""
        self._changed()
        return await db_flavors.create_missing(self.db, [
            NewFlavor(name=name, memory_mb=ram, vcpus=vcpus, root_gb=disk,
                      flavorid=flavorid).values()
            for flavorid, name, ram, vcpus, disk in DEFAULT_FLAVORS])

    async def list_flavors(self, ctx: RequestContext, q: FlavorQuery) -> list[Flavor]:
        """The page of flavors q selects, among those ctx may see."""
        scoped = dataclasses.replace(q, project_id=ctx.project_id, restricted=not ctx.is_admin)
        result: list[Flavor] = await self._cached(
            f"list:{scoped!r}", lambda: db_flavors.list_flavors(self.db, scoped))
        return result

    async def _get(self, flavorid: str) -> Flavor | None:
        result: Flavor | None = await self._cached(
            f"get:{flavorid}", lambda: db_flavors.get(self.db, flavorid))
        return result

    async def get(self, ctx: RequestContext, flavorid: str) -> Flavor:
        """The flavor, or FlavorNotFound when it is missing or private to others."""
        flavor = await self._get(flavorid)
        if flavor is None or not can_see(ctx, flavor):
            raise FlavorNotFound(flavor_id=flavorid)
        return flavor

    async def get_for_boot(self, ctx: RequestContext, flavor_ref: str) -> Flavor:
        """The flavor a server may be built with: flavor_ref is an id or a link to
        one; missing, disabled and inaccessible flavors are FlavorNotFound."""
        flavorid = urlsplit(str(flavor_ref)).path.rstrip("/").split("/")[-1]
        flavor = await self._get(flavorid)
        if flavor is None or flavor.disabled or not can_see(ctx, flavor):
            raise FlavorNotFound(flavor_id=flavorid)
        return flavor

    async def update_description(self, flavorid: str, description: str | None) -> Flavor:
        self._changed()
        return await db_flavors.set_description(self.db, flavorid, description)

    async def delete(self, flavorid: str) -> None:
        self._changed()
        await db_flavors.destroy(self.db, flavorid)

    async def update_extra_specs(self, ctx: RequestContext, flavorid: str,
                                 specs: dict[str, str]) -> Flavor:
        """Merge specs into the flavor's extra specs."""
        await self.get(ctx, flavorid)
        self._changed()
        return await db_flavors.set_extra_specs(self.db, flavorid, specs)

    async def delete_extra_spec(self, ctx: RequestContext, flavorid: str, key: str) -> Flavor:
        await self.get(ctx, flavorid)
        self._changed()
        return await db_flavors.delete_extra_spec(self.db, flavorid, key)

    async def add_access(self, flavorid: str, project_id: str) -> Flavor:
        """Share a flavor with a project; FlavorAccessExists when it already is."""
        self._changed()
        return await db_flavors.add_project(self.db, flavorid, project_id)

    async def remove_access(self, flavorid: str, project_id: str) -> Flavor:
        self._changed()
        return await db_flavors.remove_project(self.db, flavorid, project_id)
