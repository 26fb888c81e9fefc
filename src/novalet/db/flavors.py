"""Database access for flavors, their extra specs and their project access lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novalet import exceptions
from novalet.common.bounded_regex import compile_pattern
from novalet.db.engine import Database
from novalet.db.models import Flavor, FlavorExtraSpec, FlavorProject


class FlavorNotFound(exceptions.NotFound):
    msg_fmt = "Flavor %(flavor_id)s could not be found."


class FlavorExists(exceptions.Conflict):
    msg_fmt = "Flavor with name %(name)s already exists."


class FlavorIdExists(exceptions.Conflict):
    msg_fmt = "Flavor with ID %(flavor_id)s already exists."


class FlavorExtraSpecsNotFound(exceptions.NotFound):
    msg_fmt = "Flavor %(flavor_id)s has no extra specs with key %(key)s."


class FlavorAccessExists(exceptions.Conflict):
    msg_fmt = ("Flavor access already exists for flavor %(flavor_id)s and project "
               "%(project_id)s combination.")


class FlavorAccessNotFound(exceptions.NotFound):
    msg_fmt = "Flavor access not found for %(flavor_id)s / %(project_id)s combination."


class MarkerNotFound(exceptions.Invalid):
    msg_fmt = "marker [%(marker)s] not found"


SORT_KEYS = frozenset({"created_at", "description", "disabled", "ephemeral_gb", "flavorid",
                       "id", "is_public", "memory_mb", "name", "root_gb", "rxtx_factor",
                       "swap", "updated_at", "vcpus"})


@dataclass
class FlavorQuery:
    """Which flavors a list returns and in what order; None means 'not filtered'.

    `project_id` is the asking project: when `is_public` is True its private
    flavors count as matches (as Nova lists them), and with `restricted` it
    sees only public flavors and the private ones it has access to.
    """

    project_id: str | None = None
    restricted: bool = True
    is_public: bool | None = True
    disabled: bool | None = None
    min_memory_mb: int | None = None
    min_root_gb: int | None = None
    sort_key: str = "flavorid"
    sort_dir: str = "asc"
    limit: int | None = None
    marker: str | None = None
    # A regular expression the name must contain a match of (checked by the caller).
    name_pattern: str | None = None


async def get(db: Database, flavorid: str) -> Flavor | None:
    """The flavor with this public id, extra specs and projects loaded."""
    async with db.transaction() as s:
        return await _by_flavorid(s, flavorid)


async def list_flavors(db: Database, q: FlavorQuery) -> list[Flavor]:
    """Flavors matching q, sorted by (sort_key, id), the page after q.marker."""
    async with db.transaction() as s:
        rows = list((await s.execute(_filtered(select(Flavor), q))).scalars())
        if q.name_pattern is not None:
            pattern = compile_pattern(q.name_pattern, "name")
            rows = [row for row in rows if pattern.search(row.name)]
        marker = None
        if q.marker is not None:
            marker = (await s.execute(_visible(select(Flavor), q).where(
                Flavor.flavorid == q.marker))).scalar_one_or_none()
            if marker is None:
                raise MarkerNotFound(marker=q.marker)
    return _page(rows, q, marker)


def _visible(query: Any, q: FlavorQuery) -> Any:
    if not q.restricted:
        return query
    return query.where(or_(Flavor.is_public.is_(True),
                           Flavor.projects.any(FlavorProject.project_id == q.project_id)))


def _filtered(query: Any, q: FlavorQuery) -> Any:
    query = _visible(query, q)
    if q.min_memory_mb is not None:
        query = query.where(Flavor.memory_mb >= q.min_memory_mb)
    if q.min_root_gb is not None:
        query = query.where(Flavor.root_gb >= q.min_root_gb)
    if q.disabled is not None:
        query = query.where(Flavor.disabled.is_(q.disabled))
    if q.is_public is True and q.project_id is not None:
        query = query.where(or_(Flavor.is_public.is_(True), Flavor.projects.any(
            FlavorProject.project_id == q.project_id)))
    elif q.is_public is not None:
        query = query.where(Flavor.is_public.is_(q.is_public))
    return query


def _sort_value(flavor: Flavor, key: str) -> tuple[Any, ...]:
    value = getattr(flavor, key)
    # NULLs sort first ascending, as SQLite and MySQL order them.
    return (value is not None, value if value is not None else 0, flavor.id)


def _page(rows: list[Flavor], q: FlavorQuery, marker: Flavor | None) -> list[Flavor]:
    descending = q.sort_dir == "desc"
    rows.sort(key=lambda f: _sort_value(f, q.sort_key), reverse=descending)
    if marker is not None:
        after = _sort_value(marker, q.sort_key)
        rows = [f for f in rows if (_sort_value(f, q.sort_key) < after if descending
                                    else _sort_value(f, q.sort_key) > after)]
    return rows if q.limit is None else rows[:q.limit]


async def create(db: Database, values: Mapping[str, Any]) -> Flavor:
    """Insert a flavor; FlavorExists or FlavorIdExists when name or id is taken."""
    async with db.transaction() as s:
        await _check_free(s, values["name"], values["flavorid"])
        flavor = Flavor(**values, extra_specs=[], projects=[])
        s.add(flavor)
        try:
            await s.flush()
        except IntegrityError:
            # Lost a race with a concurrent create: report it the same way.
            raise FlavorExists(name=values["name"]) from None
        return flavor


async def create_missing(db: Database, flavors: list[Mapping[str, Any]]) -> list[str]:
    """Insert each flavor whose name and id are both free; the ids inserted."""
    created = []
    async with db.transaction() as s:
        for values in flavors:
            taken = (await s.execute(select(Flavor.id).where(or_(
                Flavor.name == values["name"], Flavor.flavorid == values["flavorid"])))
            ).first()
            if taken is None:
                s.add(Flavor(**values, extra_specs=[], projects=[]))
                created.append(values["flavorid"])
    return created


async def _check_free(s: AsyncSession, name: str, flavorid: str) -> None:
    if (await s.execute(select(Flavor.id).where(Flavor.flavorid == flavorid))).first():
        raise FlavorIdExists(flavor_id=flavorid)
    if (await s.execute(select(Flavor.id).where(Flavor.name == name))).first():
        raise FlavorExists(name=name)


async def set_description(db: Database, flavorid: str, description: str | None) -> Flavor:
    async with db.transaction() as s:
        flavor = await _existing(s, flavorid)
        flavor.description = description
        await s.flush()
        return flavor


async def destroy(db: Database, flavorid: str) -> None:
    """Delete the flavor with its extra specs and access list."""
    async with db.transaction() as s:
        await s.delete(await _existing(s, flavorid))


async def set_extra_specs(db: Database, flavorid: str, specs: Mapping[str, str]) -> Flavor:
    """Add or overwrite the given extra specs, keeping the others."""
    async with db.transaction() as s:
        flavor = await _existing(s, flavorid)
        current = {spec.key: spec for spec in flavor.extra_specs}
        for key, value in specs.items():
            if key in current:
                current[key].value = value
            else:
                flavor.extra_specs.append(FlavorExtraSpec(key=key, value=value))
        await s.flush()
        return flavor


async def delete_extra_spec(db: Database, flavorid: str, key: str) -> Flavor:
    async with db.transaction() as s:
        flavor = await _existing(s, flavorid)
        spec = next((e for e in flavor.extra_specs if e.key == key), None)
        if spec is None:
            raise FlavorExtraSpecsNotFound(flavor_id=flavorid, key=key)
        flavor.extra_specs.remove(spec)
        await s.flush()
        return flavor


async def add_project(db: Database, flavorid: str, project_id: str) -> Flavor:
    async with db.transaction() as s:
        flavor = await _existing(s, flavorid)
        if any(p.project_id == project_id for p in flavor.projects):
            raise FlavorAccessExists(flavor_id=flavorid, project_id=project_id)
        flavor.projects.append(FlavorProject(project_id=project_id))
        await s.flush()
        return flavor


async def remove_project(db: Database, flavorid: str, project_id: str) -> Flavor:
    async with db.transaction() as s:
        flavor = await _existing(s, flavorid)
        access = next((p for p in flavor.projects if p.project_id == project_id), None)
        if access is None:
            raise FlavorAccessNotFound(flavor_id=flavorid, project_id=project_id)
        flavor.projects.remove(access)
        await s.flush()
        return flavor


async def _by_flavorid(s: AsyncSession, flavorid: str) -> Flavor | None:
    return (await s.execute(select(Flavor).where(Flavor.flavorid == flavorid))
            ).scalar_one_or_none()


async def _existing(s: AsyncSession, flavorid: str) -> Flavor:
    flavor = await _by_flavorid(s, flavorid)
    if flavor is None:
        raise FlavorNotFound(flavor_id=flavorid)
    return flavor
