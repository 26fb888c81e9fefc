"""os-migrations as Nova filters it: host wins over source_compute, user_id and
project_id filter below 2.59 too (any parameter passes there), hidden migrations are
never listed, and a project manager lists its own project's migrations without host
fields (os-migrations:index:all_projects and :index:host are admin's)."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api
from tests.functional.test_migrations_api import _migrations, _resized_twice
from tests.functional.test_policy_roles import make_user

M = "/compute/v2.1/os-migrations"


async def test_host_makes_source_compute_ignored(api: Api) -> None:
    await _resized_twice(api)
    assert len(await _migrations(api, "?host=fake-host-1&source_compute=elsewhere")) == 2
    assert await _migrations(api, "?source_compute=elsewhere") == []
    assert await _migrations(api, "?host=elsewhere&source_compute=fake-host-1") == []


async def test_owner_filters_below_2_59(api: Api) -> None:
    _, confirmed, _ = await _resized_twice(api)
    project = confirmed["project_id"]
    for version in ("2.1", "2.58"):
        assert await _migrations(api, "?project_id=nope", version) == []
        assert await _migrations(api, "?user_id=nobody", version) == []
        assert len(await _migrations(api, f"?project_id={project}", version)) == 2
    assert len(await _migrations(api, f"?user_id={confirmed['user_id']}")) == 2


async def test_hidden_migrations_are_never_listed(api: Api) -> None:
    await _resized_twice(api)
    for query in ("?hidden=1", "?hidden=true", "?hidden=True&status=confirmed"):
        assert await _migrations(api, query) == []
    assert len(await _migrations(api, "?hidden=false")) == 2


async def _as(api: Api, user: str, query: str, version: str = "2.80") -> Any:
    return await api.request("GET", M + query, user=user, version=version)


async def test_a_project_manager_lists_its_projects_migrations_without_hosts(
        api: Api, other: str) -> None:
    _, confirmed, _ = await _resized_twice(api)
    project = confirmed["project_id"]
    await api.cloud.services.identity.create_role("manager")
    await make_user(api, "boss", "manager")  # manager (only) on project demo
    resp = await _as(api, "boss", f"?project_id={project}")
    assert resp.status_code == 200, resp.text
    listed = resp.json()["migrations"]
    assert [m["status"] for m in listed] == ["reverted", "confirmed"]
    assert {(m["source_compute"], m["dest_compute"], m["source_node"], m["dest_node"],
             m["dest_host"]) for m in listed} == {(None, None, None, None, None)}
    # Every project, or another one, is for admins.
    assert (await _as(api, "boss", "")).status_code == 403
    assert (await _as(api, "boss", f"?project_id={other}")).status_code == 403
    # A member is no manager; the admin sees the hosts.
    assert (await _as(api, "demo", f"?project_id={project}")).status_code == 403
    admin = (await _as(api, "admin", f"?project_id={project}")).json()["migrations"]
    assert admin[0]["source_compute"] == "fake-host-1"
