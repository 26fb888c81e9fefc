"""The domain services scope themselves: called directly (as an EC2 API or a dashboard
would call them, with no HTTP handler in between), every list and get gives a
member only what its project may see."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.db import images as db_images
from novalet.db import instances, migrate
from novalet.db import keypairs as db_keypairs
from novalet.db import server_groups as db_groups
from novalet.db.models import Instance, ServerGroup
from novalet.service.api import ApiServices

MEMBER = RequestContext(user_id="u-mine", project_id="p-mine", roles=["member", "reader"])
OTHER = RequestContext(user_id="u-other", project_id="p-other", roles=["member", "reader"])
ADMIN = RequestContext(user_id="u-admin", project_id="p-admin",
                       roles=["admin", "member", "reader"])


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[ApiServices]:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path))
    services = ApiServices(conf)
    await migrate.sync(services.db)
    for ctx in (MEMBER, OTHER):
        await _seed(services, ctx)
    yield services
    await services.db.close()


async def _seed(services: ApiServices, ctx: RequestContext) -> None:
    """One server, key pair, server group, private image and network of ctx's project."""
    project, user = ctx.project_id or "", ctx.user_id or ""
    await instances.create(services.db, [_instance(project, user, f"vm-{project}")])
    await db_keypairs.create(services.db, {
        "user_id": user, "name": f"key-{project}", "type": "ssh",
        "public_key": "ssh-ed25519 AAAA", "fingerprint": "00"}, project_id=project)
    await db_groups.create(services.db, ServerGroup(
        uuid=str(uuidlib.uuid4()), name=f"group-{project}", project_id=project,
        user_id=user, policy="affinity", rules={}, generation=0, members=[]))
    await db_images.create_image(services.db, {
        "id": str(uuidlib.uuid4()), "name": f"image-{project}", "owner": project,
        "visibility": "private", "status": "active"})
    number = 10 if project == "p-mine" else 11
    await services.network.create_network(ADMIN, f"net-{project}", f"10.{number}.0.0/24",
                                          project_id=project)


def _instance(project: str, user: str, name: str) -> Instance:
    return Instance(uuid=str(uuidlib.uuid4()), display_name=name, hostname=name,
                    project_id=project, user_id=user, image_ref="", vm_state="active",
                    power_state=1, reservation_id="r-1", flavor={"flavorid": "1"},
                    system_metadata={})


async def test_domain_list_functions_give_a_member_only_its_projects_rows(
        services: ApiServices) -> None:
    # A ListQuery that asks for nothing in particular (project_id None) is still scoped.
    servers = await services.compute.list_servers(MEMBER, instances.ListQuery())
    assert [s.project_id for s in servers] == ["p-mine"]
    asking_for_other = instances.ListQuery(project_id="p-other")
    servers = await services.compute.list_servers(MEMBER, asking_for_other)
    assert [s.project_id for s in servers] == ["p-mine"]
    keypairs = await services.keypairs.list_for_user(MEMBER)
    assert [k.name for k in keypairs] == ["key-p-mine"]
    groups = await services.server_groups.list_groups(MEMBER, True, None, 0)
    assert [g.project_id for g in groups] == ["p-mine"]
    images, _ = await services.images.list_images(MEMBER, db_images.ImageQuery(viewer=None))
    assert [i["owner"] for i in images] == ["p-mine"]
    networks = await services.network.list_networks(MEMBER)
    assert [n.project_id for n in networks] == ["p-mine"]


async def test_domain_gets_hide_other_projects_rows(services: ApiServices) -> None:
    theirs = (await services.compute.list_servers(OTHER, instances.ListQuery()))[0]
    with pytest.raises(exceptions.NotFound):
        await services.compute.get(MEMBER, theirs.uuid)
    with pytest.raises(exceptions.NotFound):
        await services.keypairs.get(MEMBER, "key-p-other")
    with pytest.raises(exceptions.Forbidden):  # another user's keys need other_user
        await services.keypairs.list_for_user(MEMBER, "u-other")
    group = (await services.server_groups.list_groups(OTHER, False, None, 0))[0]
    with pytest.raises(exceptions.NotFound):
        await services.server_groups.get(MEMBER, group.uuid)
    network = (await services.network.list_networks(OTHER))[0]
    with pytest.raises(exceptions.NotFound):
        await services.network.get_network(MEMBER, network.uuid)
    with pytest.raises(exceptions.Forbidden):
        await services.network.get_fixed_ip(MEMBER, "10.11.0.5")
    # Addresses of servers ctx may not see are not shown (absent, like servers
    # without any).
    mine = (await services.compute.list_servers(MEMBER, instances.ListQuery()))[0]
    await services.network.allocate_for_instance(mine.uuid, "p-mine", "h1", "vm")
    await services.network.allocate_for_instance(theirs.uuid, "p-other", "h1", "vm")
    assert set(await services.network.server_networking(ADMIN, [mine.uuid, theirs.uuid])
               ) == {mine.uuid, theirs.uuid}
    assert set(await services.network.server_networking(MEMBER, [mine.uuid, theirs.uuid])
               ) == {mine.uuid}


async def test_all_tenants_needs_the_policy_in_the_domain_layer(
        services: ApiServices) -> None:
    with pytest.raises(exceptions.Forbidden):
        await services.compute.list_servers(MEMBER, instances.ListQuery(), all_tenants=True)
    every = await services.compute.list_servers(ADMIN, instances.ListQuery(),
                                                all_tenants=True)
    assert sorted(s.project_id for s in every) == ["p-mine", "p-other"]
    # An admin without all_tenants lists its own project, whatever project_id says.
    own = await services.compute.list_servers(ADMIN, instances.ListQuery(project_id="p-other"))
    assert own == []
    one = await services.compute.list_servers(ADMIN, instances.ListQuery(project_id="p-other"),
                                              all_tenants=True)
    assert [s.project_id for s in one] == ["p-other"]
    groups = await services.server_groups.list_groups(ADMIN, True, None, 0)
    assert sorted(g.project_id for g in groups) == ["p-mine", "p-other"]
    assert len(await services.keypairs.list_for_user(ADMIN, "u-other")) == 1


async def test_another_projects_server_is_no_marker(services: ApiServices) -> None:
    theirs = (await services.compute.list_servers(OTHER, instances.ListQuery()))[0]
    with pytest.raises(instances.MarkerNotFound) as err:
        await services.compute.list_servers(MEMBER, instances.ListQuery(
            marker=theirs.uuid, sort=[("display_name", "asc")]))
    assert err.value.code == 400


async def test_marker_leak_for_a_token_without_a_project(services: ApiServices) -> None:
    """A token without a project (system- or domain-scoped, not admin) lists its
    user's servers; the marker was looked up across every project and user, so
    another user's server could be paged from (and its name read by bisection)."""
    projectless = RequestContext(user_id="u-mine", project_id=None, roles=["reader"])
    theirs = (await services.compute.list_servers(OTHER, instances.ListQuery()))[0]
    mine = await services.compute.list_servers(projectless, instances.ListQuery())
    assert [s.user_id for s in mine] == ["u-mine"]
    with pytest.raises(instances.MarkerNotFound) as err:
        await services.compute.list_servers(projectless, instances.ListQuery(
            marker=theirs.uuid, sort=[("display_name", "asc")]))
    assert err.value.code == 400
    # Its own server stays a marker.
    assert await services.compute.list_servers(projectless, instances.ListQuery(
        marker=mine[0].uuid, sort=[("display_name", "asc")])) == []


async def test_regex_filter_scan_is_capped_and_narrowed_in_the_database(
        services: ApiServices) -> None:
    """A pattern that matches nothing read the whole table, 200 rows at a time (for
    an admin with all_tenants, every project's); past [api] max_filter_scan rows
    the answer is a clear 400, and a pattern with plain text in it is narrowed by
    the database first, so it scans only the rows that contain that text."""
    await instances.create(services.db, [_instance(f"p-{i % 7}", "u", f"web-{i:03d}")
                                         for i in range(600)])
    services.conf.set("api", "max_filter_scan", 300)
    no_literal = instances.ListQuery(patterns={"display_name": "^[x-z]{3}\\d$"}, limit=10)
    with pytest.raises(instances.FilterScanTooLong) as err:
        await services.compute.list_servers(ADMIN, no_literal, all_tenants=True)
    assert err.value.code == 400
    assert "filters name were tried on 400 servers" in str(err.value)
    # The same pattern under the cap, and a narrow pattern, still answer in full.
    services.conf.set("api", "max_filter_scan", 1000)
    assert await services.compute.list_servers(ADMIN, no_literal, all_tenants=True) == []
    services.conf.set("api", "max_filter_scan", 300)
    found = await services.compute.list_servers(ADMIN, instances.ListQuery(
        patterns={"display_name": "^web-5\\d9$"}, limit=10), all_tenants=True)
    assert sorted(s.display_name for s in found) == [f"web-5{d}9" for d in range(10)]
    # The database prefilter (LIKE) escapes % and _ and never hides a match.
    await instances.create(services.db, [_instance("p-mine", "u-mine", "50%_off"),
                                         _instance("p-mine", "u-mine", "50x_off")])
    found = await services.compute.list_servers(MEMBER, instances.ListQuery(
        patterns={"display_name": "50%_"}))
    assert [s.display_name for s in found] == ["50%_off"]
