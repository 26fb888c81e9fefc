"""FlavorService: creation, defaults, Nova's visibility rules, paging, specs and access."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.compute.flavors import (
    DEFAULT_FLAVORS,
    FlavorAccessExists,
    FlavorAccessNotFound,
    FlavorExists,
    FlavorExtraSpecsNotFound,
    FlavorIdExists,
    FlavorNotFound,
    FlavorQuery,
    FlavorService,
    MarkerNotFound,
    NewFlavor,
    extra_specs_of,
    projects_of,
)
from novalet.db import migrate
from novalet.db.engine import Database

ADMIN = RequestContext(user_id="u-admin", project_id="p-admin", roles=["admin"])
ALICE = RequestContext(user_id="u-alice", project_id="p-alice", roles=["member"])
BOB = RequestContext(user_id="u-bob", project_id="p-bob", roles=["member"])


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[FlavorService]:
    db = Database(f"sqlite:///{tmp_path / 'flavors.sqlite'}")
    await migrate.sync(db)
    yield FlavorService(db)
    await db.close()


def _new(name: str, flavorid: str | None = None, **kw: Any) -> NewFlavor:
    values: dict[str, Any] = {"memory_mb": 256, "vcpus": 1, "root_gb": 1, **kw}
    return NewFlavor(name=name, flavorid=flavorid, **values)


async def _ids(service: FlavorService, ctx: RequestContext, **kw: Any) -> list[str]:
    return [f.flavorid for f in await service.list_flavors(ctx, FlavorQuery(**kw))]


async def test_create_defaults_makes_nova_standard_flavors_once(service: FlavorService) -> None:
    assert await service.create_defaults() == ["1", "2", "3", "4", "5"]
    assert await service.create_defaults() == []
    tiny = await service.get(ALICE, "1")
    assert (tiny.name, tiny.memory_mb, tiny.vcpus, tiny.root_gb) == ("m1.tiny", 512, 1, 1)
    xlarge = await service.get(ALICE, "5")
    assert (xlarge.name, xlarge.memory_mb, xlarge.vcpus, xlarge.root_gb) == (
        "m1.xlarge", 16384, 8, 160)
    assert len(DEFAULT_FLAVORS) == 5


async def test_create_defaults_skips_a_flavor_whose_name_is_taken(
        service: FlavorService) -> None:
    await service.create(_new("m1.small", "custom"))
    assert await service.create_defaults() == ["1", "3", "4", "5"]


async def test_create_generates_uuid_id_and_defaults(service: FlavorService) -> None:
    flavor = await service.create(_new("f1"))
    assert len(flavor.flavorid) == 36 and flavor.flavorid.count("-") == 4
    assert (flavor.ephemeral_gb, flavor.swap, flavor.rxtx_factor) == (0, 0, 1.0)
    assert flavor.is_public and not flavor.disabled and flavor.description is None
    assert extra_specs_of(flavor) == {} and projects_of(flavor) == []


async def test_duplicate_name_or_id_is_a_conflict(service: FlavorService) -> None:
    await service.create(_new("f1", "10"))
    with pytest.raises(FlavorExists, match="Flavor with name f1 already exists."):
        await service.create(_new("f1", "11"))
    with pytest.raises(FlavorIdExists, match="Flavor with ID 10 already exists.") as err:
        await service.create(_new("f2", "10"))
    assert err.value.code == 409


async def test_private_flavor_is_hidden_from_other_projects(service: FlavorService) -> None:
    await service.create(_new("priv", "p1", is_public=False))
    await service.add_access("p1", "p-alice")
    assert (await service.get(ALICE, "p1")).name == "priv"
    assert (await service.get(ADMIN, "p1")).name == "priv"
    with pytest.raises(FlavorNotFound, match="Flavor p1 could not be found."):
        await service.get(BOB, "p1")


async def test_list_public_includes_own_private_flavors(service: FlavorService) -> None:
    await service.create_defaults()
    await service.create(_new("priv", "p1", is_public=False))
    await service.add_access("p1", "p-alice")
    assert await _ids(service, ALICE) == ["1", "2", "3", "4", "5", "p1"]
    assert await _ids(service, BOB) == ["1", "2", "3", "4", "5"]
    # an admin's default list is public ones plus those of the admin's project
    assert await _ids(service, ADMIN) == ["1", "2", "3", "4", "5"]
    assert await _ids(service, ADMIN, is_public=None) == ["1", "2", "3", "4", "5", "p1"]
    assert await _ids(service, ADMIN, is_public=False) == ["p1"]


async def test_list_filters_sorts_and_pages(service: FlavorService) -> None:
    await service.create_defaults()
    assert await _ids(service, ALICE, min_memory_mb=4096) == ["3", "4", "5"]
    assert await _ids(service, ALICE, min_root_gb=40, min_memory_mb=8192) == ["4", "5"]
    assert await _ids(service, ALICE, sort_key="memory_mb", sort_dir="desc") == [
        "5", "4", "3", "2", "1"]
    assert await _ids(service, ALICE, limit=2) == ["1", "2"]
    assert await _ids(service, ALICE, limit=2, marker="2") == ["3", "4"]
    assert await _ids(service, ALICE, sort_dir="desc", marker="3") == ["2", "1"]
    with pytest.raises(MarkerNotFound, match=r"marker \[nope\] not found"):
        await _ids(service, ALICE, marker="nope")


async def test_sort_by_nullable_description_puts_nulls_first(service: FlavorService) -> None:
    await service.create(_new("a", "a", description="zzz"))
    await service.create(_new("b", "b"))
    await service.create(_new("c", "c", description="aaa"))
    assert await _ids(service, ALICE, sort_key="description") == ["b", "c", "a"]
    assert await _ids(service, ALICE, sort_key="description", marker="b") == ["c", "a"]


async def test_get_for_boot_follows_links_and_refuses_disabled_or_private(
        service: FlavorService) -> None:
    await service.create_defaults()
    await service.create(_new("priv", "p1", is_public=False))
    assert (await service.get_for_boot(ALICE, "http://x/compute/v2.1/flavors/2")).name == (
        "m1.small")
    assert (await service.get_for_boot(ADMIN, "p1")).name == "priv"
    with pytest.raises(FlavorNotFound, match="Flavor p1 could not be found."):
        await service.get_for_boot(ALICE, "p1")
    with pytest.raises(FlavorNotFound, match="Flavor 42 could not be found."):
        await service.get_for_boot(ALICE, "42")


async def test_update_description_and_delete(service: FlavorService) -> None:
    await service.create(_new("f1", "10"))
    assert (await service.update_description("10", "small one")).description == "small one"
    assert (await service.get(ALICE, "10")).description == "small one"
    await service.delete("10")
    with pytest.raises(FlavorNotFound):
        await service.get(ADMIN, "10")
    with pytest.raises(FlavorNotFound):
        await service.delete("10")


async def test_extra_specs_merge_and_delete(service: FlavorService) -> None:
    await service.create(_new("f1", "10"))
    await service.update_extra_specs(ADMIN, "10", {"a": "1", "b": "2"})
    flavor = await service.update_extra_specs(ADMIN, "10", {"b": "3", "c": "4"})
    assert extra_specs_of(flavor) == {"a": "1", "b": "3", "c": "4"}
    flavor = await service.delete_extra_spec(ADMIN, "10", "a")
    assert extra_specs_of(flavor) == {"b": "3", "c": "4"}
    assert extra_specs_of(await service.get(ALICE, "10")) == {"b": "3", "c": "4"}
    with pytest.raises(FlavorExtraSpecsNotFound,
                       match="Flavor 10 has no extra specs with key a."):
        await service.delete_extra_spec(ADMIN, "10", "a")


async def test_extra_specs_of_an_invisible_flavor_are_not_found(
        service: FlavorService) -> None:
    await service.create(_new("priv", "p1", is_public=False))
    with pytest.raises(FlavorNotFound):
        await service.update_extra_specs(BOB, "p1", {"a": "1"})


async def test_access_add_remove(service: FlavorService) -> None:
    await service.create(_new("priv", "p1", is_public=False))
    await service.add_access("p1", "p-bob")
    flavor = await service.add_access("p1", "p-alice")
    assert projects_of(flavor) == ["p-alice", "p-bob"]
    with pytest.raises(FlavorAccessExists, match="project p-bob combination"):
        await service.add_access("p1", "p-bob")
    assert projects_of(await service.remove_access("p1", "p-bob")) == ["p-alice"]
    with pytest.raises(FlavorAccessNotFound,
                       match="Flavor access not found for p1 / p-bob combination."):
        await service.remove_access("p1", "p-bob")
    with pytest.raises(FlavorNotFound):
        await service.add_access("nope", "p-bob")


async def test_deleting_a_flavor_removes_its_specs_and_access(service: FlavorService) -> None:
    await service.create(_new("priv", "p1", is_public=False))
    await service.add_access("p1", "p-alice")
    await service.update_extra_specs(ADMIN, "p1", {"a": "1"})
    await service.delete("p1")
    flavor = await service.create(_new("priv", "p1", is_public=False))
    assert extra_specs_of(flavor) == {} and projects_of(flavor) == []
