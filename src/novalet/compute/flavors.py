"""Flavors: the sizes servers come in, who may use them, and the defaults a cloud starts with."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from novalet.common.context import RequestContext
from novalet.db import flavors as db_flavors
from novalet.db.cache_generations import Generation
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
    and change rarely. The cache is only good while the "flavors" generation
    (db/cache_generations.py) stays where it was when the cache was filled; every
    write bumps it once committed, so a change made through any API process is
    seen at once through every other (at the price of one primary-key read per
    use when `generation` is shared).
    """

    CACHE_MAX = 1024  # entries (one per distinct list query): a bound, not a tuning knob

    def __init__(self, db: Database, generation: Generation | None = None) -> None:
        self.db = db
        self.generation = generation or Generation(db, "flavors", shared=False)
        self._cache: dict[str, Any] = {}
        self._cache_generation: int | None = None

    async def _cached(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        generation = await self.generation.current()
        if generation != self._cache_generation:
            self._cache.clear()
            self._cache_generation = generation
        if key in self._cache:
            return self._cache[key]
        value = await load()
        # Keep it only if no write of this process bumped the generation meanwhile
        # (_changed resets _cache_generation): the value may predate that write.
        if self._cache_generation == generation:
            if len(self._cache) >= self.CACHE_MAX:
                self._cache.clear()
            self._cache[key] = value
        return value

    async def _changed(self) -> None:
        """After a committed write: every process's copy is stale now."""
        self._cache.clear()
        self._cache_generation = None
        await self.generation.bump()

    async def create(self, new: NewFlavor) -> Flavor:
        """FlavorExists / FlavorIdExists (409) when the name or id is taken."""
        flavor = await db_flavors.create(self.db, new.values())
        await self._changed()
        return flavor

    async def create_defaults(self) -> list[str]:
        """Create whichever of Nova's standard flavors are missing; their ids."""
        created = await db_flavors.create_missing(self.db, [
            NewFlavor(name=name, memory_mb=ram, vcpus=vcpus, root_gb=disk,
                      flavorid=flavorid).values()
            for flavorid, name, ram, vcpus, disk in DEFAULT_FLAVORS])
        if created:
            await self._changed()
        return created

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
        flavor = await db_flavors.set_description(self.db, flavorid, description)
        await self._changed()
        return flavor

    async def delete(self, flavorid: str) -> None:
        await db_flavors.destroy(self.db, flavorid)
        await self._changed()

    async def update_extra_specs(self, ctx: RequestContext, flavorid: str,
                                 specs: dict[str, str]) -> Flavor:
        """Merge specs into the flavor's extra specs."""
        await self.get(ctx, flavorid)
        flavor = await db_flavors.set_extra_specs(self.db, flavorid, specs)
        await self._changed()
        return flavor

    async def delete_extra_spec(self, ctx: RequestContext, flavorid: str, key: str) -> Flavor:
        await self.get(ctx, flavorid)
        flavor = await db_flavors.delete_extra_spec(self.db, flavorid, key)
        await self._changed()
        return flavor

    async def add_access(self, flavorid: str, project_id: str) -> Flavor:
        """Share a flavor with a project; FlavorAccessExists when it already is."""
        flavor = await db_flavors.add_project(self.db, flavorid, project_id)
        await self._changed()
        return flavor

    async def remove_access(self, flavorid: str, project_id: str) -> Flavor:
        flavor = await db_flavors.remove_project(self.db, flavorid, project_id)
        await self._changed()
        return flavor
