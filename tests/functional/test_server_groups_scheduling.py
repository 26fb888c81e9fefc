"""Server groups driving real scheduling decisions across four fake compute hosts."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from novalet.common.context import RequestContext
from novalet.compute.payloads import RequestSpec
from novalet.compute.scheduling_group import SchedulingGroup
from novalet.db import placement
from novalet.db import server_groups as db_groups
from novalet.scheduler.manager import SchedulerManager
from novalet.service.allinone import AllInOne
from tests.functional.conftest import MULTI_HOSTS, Api, ensure_image, make_conf, wait_for

GROUPS = "/compute/v2.1/os-server-groups"
SERVERS = "/compute/v2.1/servers"


async def make_group(api: Api, policy: str, rules: dict[str, Any] | None = None,
                     user: str = "demo") -> str:
    body: dict[str, Any] = {"name": f"{policy}-group", "policy": policy}
    if rules:
        body["rules"] = rules
    resp = await api.request("POST", GROUPS, user=user, version="2.64",
                             json={"server_group": body})
    assert resp.status_code == 200, resp.text
    group_id: str = resp.json()["server_group"]["id"]
    return group_id


async def post_server(api: Api, hints: dict[str, Any] | None = None, name: str = "vm",
                      user: str = "demo", **server: Any) -> Any:
    image_id = await ensure_image(api)
    body: dict[str, Any] = {"server": {"name": name, "imageRef": image_id, "flavorRef": "1",
                                       "networks": "none", **server}}
    if hints is not None:
        body["os:scheduler_hints"] = hints
    return await api.request("POST", SERVERS, user=user, version="2.71", json=body)


async def boot_into(api: Api, hints: dict[str, Any], wait: str = "ACTIVE",
                    **server: Any) -> dict[str, Any]:
    resp = await post_server(api, hints, **server)
    assert resp.status_code == 202, resp.text
    return await wait_for(api, resp.json()["server"]["id"], wait)


async def host_of(api: Api, server_id: str) -> str:
    resp = await api.request("GET", f"{SERVERS}/{server_id}", user="admin", version="2.71")
    host: str = resp.json()["server"]["OS-EXT-SRV-ATTR:host"]
    return host


async def members(api: Api, group_id: str) -> list[str]:
    resp = await api.request("GET", f"{GROUPS}/{group_id}", version="2.64")
    found: list[str] = resp.json()["server_group"]["members"]
    return found


async def test_anti_affinity_spreads_one_per_host_then_fails(multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "anti-affinity")
    servers = [await boot_into(api, {"group": group}) for _ in MULTI_HOSTS]
    hosts = [await host_of(api, s["id"]) for s in servers]
    assert sorted(hosts) == sorted(MULTI_HOSTS)
    assert sorted(await members(api, group)) == sorted(s["id"] for s in servers)
    extra = await boot_into(api, {"group": group}, wait="ERROR")
    assert "No valid host was found" in extra["fault"]["message"]
    assert "ServerGroupAntiAffinityFilter removed 4 host(s)" in extra["fault"]["message"]


async def test_affinity_keeps_every_member_on_one_host(multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "affinity")
    servers = [await boot_into(api, {"group": group}) for _ in range(3)]
    hosts = {await host_of(api, s["id"]) for s in servers}
    assert len(hosts) == 1


async def test_max_server_per_host_two(multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "anti-affinity", {"max_server_per_host": 2})
    servers = [await boot_into(api, {"group": group}) for _ in range(2 * len(MULTI_HOSTS))]
    counts = Counter([await host_of(api, s["id"]) for s in servers])
    assert counts == dict.fromkeys(MULTI_HOSTS, 2)
    extra = await boot_into(api, {"group": group}, wait="ERROR")
    assert "max_server_per_host is 2" in extra["fault"]["message"]


async def test_soft_anti_affinity_spreads_but_never_fails(multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "soft-anti-affinity")
    servers = [await boot_into(api, {"group": group}) for _ in range(len(MULTI_HOSTS) + 2)]
    counts = Counter([await host_of(api, s["id"]) for s in servers])
    assert set(counts) == set(MULTI_HOSTS)
    assert max(counts.values()) == 2


@pytest.fixture
async def weighty_soft_api(state_dir: Path, request: pytest.FixtureRequest
                           ) -> AsyncIterator[Api]:
    """Four hosts, and the soft policies' multipliers raised above the sum of the
    resource weighers' (1.0 each, as Nova's defaults), as operators do to make a
    soft policy win over the resource weighers. An indirect parameter adds options."""
    extra: dict[str, Any] = getattr(request, "param", {})
    cloud = AllInOne(make_conf(state_dir, fake__extra_hosts=len(MULTI_HOSTS) - 1,
                               filter_scheduler__soft_affinity_weight_multiplier=10.0,
                               filter_scheduler__soft_anti_affinity_weight_multiplier=10.0,
                               **extra),
                     in_process_http=True)
    await cloud.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cloud.app),
                                     base_url="http://novalet.test") as client:
            yield Api(cloud, client)
    finally:
        await cloud.stop()


STACKING = {f"filter_scheduler__{kind}_weight_multiplier": -1.0
            for kind in ("ram", "cpu", "disk")}


@pytest.mark.parametrize("weighty_soft_api", [STACKING], indirect=True)
async def test_soft_anti_affinity_spreads_against_stacking_weighers(
        weighty_soft_api: Api) -> None:
    api = weighty_soft_api
    plain = [await boot_into(api, {}) for _ in range(2)]
    assert len({await host_of(api, s["id"]) for s in plain}) == 1  # stacking
    group = await make_group(api, "soft-anti-affinity")
    servers = [await boot_into(api, {"group": group}) for _ in MULTI_HOSTS]
    assert sorted([await host_of(api, s["id"]) for s in servers]) == sorted(MULTI_HOSTS)


async def test_soft_affinity_packs(weighty_soft_api: Api) -> None:
    api = weighty_soft_api
    group = await make_group(api, "soft-affinity")
    servers = [await boot_into(api, {"group": group}) for _ in range(3)]
    assert len({await host_of(api, s["id"]) for s in servers}) == 1


async def test_soft_affinity_with_default_multiplier_is_one_weigher_among_many(
        multi_host_api: Api) -> None:
    """At Nova's default multiplier (1.0) the resource weighers outweigh it: servers
    still boot (a soft policy never fails a boot), spread by free resources."""
    api = multi_host_api
    group = await make_group(api, "soft-affinity")
    servers = [await boot_into(api, {"group": group}) for _ in range(3)]
    assert all(s["status"] == "ACTIVE" for s in servers)


async def test_multi_create_honours_anti_affinity_within_the_request(multi_host_api: Api
                                                                     ) -> None:
    api = multi_host_api
    group = await make_group(api, "anti-affinity")
    resp = await post_server(api, {"group": group}, min_count=len(MULTI_HOSTS),
                             max_count=len(MULTI_HOSTS), return_reservation_id=True)
    assert resp.status_code == 202, resp.text
    ids = await members(api, group)
    assert len(ids) == len(MULTI_HOSTS)
    for server_id in ids:
        await wait_for(api, server_id, "ACTIVE")
    assert sorted([await host_of(api, i) for i in ids]) == sorted(MULTI_HOSTS)


async def test_multi_create_beyond_the_hosts_fails_every_instance(multi_host_api: Api
                                                                  ) -> None:
    api = multi_host_api
    group = await make_group(api, "anti-affinity")
    count = len(MULTI_HOSTS) + 1
    resp = await post_server(api, {"group": group}, min_count=count, max_count=count)
    assert resp.status_code == 202, resp.text
    ids = await members(api, group)
    assert len(ids) == count
    for server_id in ids:
        server = await wait_for(api, server_id, "ERROR")
        assert "ServerGroupAntiAffinityFilter" in server["fault"]["message"]


async def test_concurrent_boots_into_anti_affinity_group_never_share_a_host(
        multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "anti-affinity")
    responses = await asyncio.gather(*[post_server(api, {"group": group})
                                       for _ in range(len(MULTI_HOSTS) + 2)])
    ids = [r.json()["server"]["id"] for r in responses]
    statuses = []
    for server_id in ids:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            resp = await api.request("GET", f"{SERVERS}/{server_id}", version="2.71")
            body = resp.json()["server"]
            if body["status"] in ("ACTIVE", "ERROR") and body["OS-EXT-STS:task_state"] is None:
                break
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.02)
        statuses.append(body["status"])
    active = [i for i, s in zip(ids, statuses, strict=True) if s == "ACTIVE"]
    assert len(active) == len(MULTI_HOSTS)
    assert sorted([await host_of(api, i) for i in active]) == sorted(MULTI_HOSTS)


async def test_a_stale_group_generation_loses_the_claim(multi_host_api: Api) -> None:
    """Race-free at claim time: a scheduler that read the group's members before
    another's claim for the group can't claim with what it read."""
    api = multi_host_api
    db = api.cloud.services.db
    group = await make_group(api, "anti-affinity")
    generation, hosts = await db_groups.member_hosts(db, group, exclude=[])
    assert hosts == {}
    provider = (await placement.summaries(db))[0]
    resources = {"VCPU": 1, "MEMORY_MB": 64, "DISK_GB": 1}
    assert await placement.claim(db, "consumer-a", provider.uuid, resources,
                                 provider.generation, group=(group, generation))
    provider = (await placement.summaries(db))[0]
    assert not await placement.claim(db, "consumer-b", provider.uuid, resources,
                                     provider.generation, group=(group, generation))
    assert await placement.claim(db, "consumer-b", provider.uuid, resources,
                                 provider.generation, group=(group, generation + 1))


async def test_deleting_a_server_leaves_its_group(multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "anti-affinity")
    server = await boot_into(api, {"group": group})
    assert await members(api, group) == [server["id"]]
    resp = await api.request("DELETE", f"{SERVERS}/{server['id']}")
    assert resp.status_code == 204
    for _ in range(200):
        if not await members(api, group):
            break
        await asyncio.sleep(0.02)
    assert await members(api, group) == []
    # Its host is free for the group again.
    again = [await boot_into(api, {"group": group}) for _ in MULTI_HOSTS]
    assert len({await host_of(api, s["id"]) for s in again}) == len(MULTI_HOSTS)


async def test_server_groups_field_from_271(multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "affinity")
    server = await boot_into(api, {"group": group})
    url = f"{SERVERS}/{server['id']}"
    shown = (await api.request("GET", url, version="2.71")).json()["server"]
    assert shown["server_groups"] == [group]
    assert "server_groups" not in (await api.request("GET", url, version="2.70")
                                   ).json()["server"]
    updated = (await api.request("PUT", url, version="2.71",
                                 json={"server": {"name": "renamed"}})).json()["server"]
    assert updated["server_groups"] == [group]
    resp = await api.request("POST", f"{url}/action", version="2.71", json={
        "rebuild": {"imageRef": await ensure_image(api)}})
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["server_groups"] == [group]
    await wait_for(api, server["id"], "ACTIVE")
    plain = await boot_into(api, {})
    shown = (await api.request("GET", f"{SERVERS}/{plain['id']}", version="2.71")
             ).json()["server"]
    assert shown["server_groups"] == []


async def test_bad_group_hints_are_400(multi_host_api: Api) -> None:
    api = multi_host_api
    others = await make_group(api, "affinity", user="admin")
    hints: dict[str, Any]
    for hints in ({"group": "7b1e1a0c-9c0e-4f4e-8a11-1d1c3a5e9b00"}, {"group": others},
                  {"group": "not-a-uuid"}, {"group": 5},
                  {"different_host": "nope"}, {"same_host": ["nope"]},
                  {"different_host": []}):
        resp = await post_server(api, hints)
        assert resp.status_code == 400, (hints, resp.text)
    resp = await post_server(api, {"group": others})
    assert "could not be found" in resp.json()["badRequest"]["message"]


async def test_server_group_members_quota(multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "soft-anti-affinity")
    project = (await api.request("GET", f"{GROUPS}/{group}", version="2.64")
               ).json()["server_group"]["project_id"]
    resp = await api.request("PUT", f"/compute/v2.1/os-quota-sets/{project}", user="admin",
                             json={"quota_set": {"server_group_members": 2}})
    assert resp.status_code == 200, resp.text
    await boot_into(api, {"group": group})
    resp = await post_server(api, {"group": group}, min_count=2, max_count=2)
    assert resp.status_code == 403, resp.text
    assert "Quota exceeded, too many servers in group" in resp.text
    assert len(await members(api, group)) == 1
    await boot_into(api, {"group": group})
    assert len(await members(api, group)) == 2


async def test_two_schedulers_racing_for_one_anti_affinity_group(multi_host_api: Api) -> None:
    """Two scheduler services (as in a multi-host deployment) place members of one
    group at once: the group's generation makes the loser re-read the members, so
    every host gets one member and neither request fails."""
    api = multi_host_api
    cloud = api.cloud
    db = cloud.services.db
    group = await make_group(api, "anti-affinity")
    second = SchedulerManager(cloud.conf, db, cloud.scheduler.bus)
    batches = [[f"racer-{i}-{j}" for j in range(2)] for i in range(2)]
    async with db.transaction() as s:
        await db_groups.add_members(s, group, [u for batch in batches for u in batch])

    def spec(uuids: list[str]) -> dict[str, Any]:
        return RequestSpec(instance_uuids=uuids, project_id="p", user_id="u", vcpus=1,
                           memory_mb=64, disk_gb=1,
                           group=SchedulingGroup(uuid=group, policy="anti-affinity",
                                                 max_server_per_host=1)).to_dict()

    ctx = RequestContext.admin()
    results = await asyncio.gather(cloud.scheduler.select_destinations(ctx, spec(batches[0])),
                                   second.select_destinations(ctx, spec(batches[1])))
    hosts = [d["host"] for result in results for d in result]
    assert sorted(hosts) == sorted(MULTI_HOSTS)
    generation, counted = await db_groups.member_hosts(db, group, exclude=[])
    assert counted == dict.fromkeys(MULTI_HOSTS, 1)
    assert generation == len(MULTI_HOSTS)


async def test_two_schedulers_racing_for_one_affinity_group(multi_host_api: Api) -> None:
    """Both read the group empty; the first claim wins a host and the other's claim,
    stale by the group's generation, loses even on a host whose resources it read
    fresh: it re-reads the members and follows onto the first one's host."""
    api = multi_host_api
    cloud = api.cloud
    db = cloud.services.db
    group = await make_group(api, "affinity")
    second = SchedulerManager(cloud.conf, db, cloud.scheduler.bus)
    async with db.transaction() as s:
        await db_groups.add_members(s, group, ["racer-a", "racer-b"])

    def spec(uuid: str) -> dict[str, Any]:
        return RequestSpec(instance_uuids=[uuid], project_id="p", user_id="u", vcpus=1,
                           memory_mb=64, disk_gb=1,
                           group=SchedulingGroup(uuid=group, policy="affinity")).to_dict()

    ctx = RequestContext.admin()
    results = await asyncio.gather(cloud.scheduler.select_destinations(ctx, spec("racer-a")),
                                   second.select_destinations(ctx, spec("racer-b")))
    assert len({d["host"] for result in results for d in result}) == 1


async def test_multi_create_into_affinity_group_lands_on_one_host(multi_host_api: Api
                                                                  ) -> None:
    api = multi_host_api
    group = await make_group(api, "affinity")
    resp = await post_server(api, {"group": group}, min_count=3, max_count=3)
    assert resp.status_code == 202, resp.text
    ids = await members(api, group)
    assert len(ids) == 3
    for server_id in ids:
        await wait_for(api, server_id, "ACTIVE")
    assert len({await host_of(api, i) for i in ids}) == 1


async def test_multi_create_with_max_server_per_host(multi_host_api: Api) -> None:
    api = multi_host_api
    group = await make_group(api, "anti-affinity", {"max_server_per_host": 2})
    resp = await post_server(api, {"group": group}, min_count=6, max_count=6)
    assert resp.status_code == 202, resp.text
    ids = await members(api, group)
    for server_id in ids:
        await wait_for(api, server_id, "ACTIVE")
    counts = Counter([await host_of(api, i) for i in ids])
    assert sum(counts.values()) == 6 and max(counts.values()) == 2


async def move(api: Api, sid: str, kind: str, host: str | None) -> httpx.Response:
    body: dict[str, Any] = ({"migrate": {"host": host}} if kind == "migrate" else
                            {"os-migrateLive": {"host": host, "block_migration": "auto"}})
    return await api.request("POST", f"{SERVERS}/{sid}/action", user="admin",
                             version="2.56" if kind == "migrate" else "2.30", json=body)


@pytest.mark.parametrize("kind", ["migrate", "live"])
async def test_moves_keep_anti_affinity(multi_host_api: Api, kind: str) -> None:
    """A move may not land beside another member of its anti-affinity group; the
    scheduler's pick goes to the one host without a member."""
    api = multi_host_api
    group = await make_group(api, "anti-affinity")
    members = [await boot_into(api, {"group": group}) for _ in range(3)]
    hosts = [await host_of(api, m["id"]) for m in members]
    resp = await move(api, members[0]["id"], kind, hosts[1])
    assert resp.status_code == 400, resp.text
    assert "No valid host" in resp.json()["badRequest"]["message"]
    assert await host_of(api, members[0]["id"]) == hosts[0]
    assert (await move(api, members[0]["id"], kind, None)).status_code == 202
    expected = "VERIFY_RESIZE" if kind == "migrate" else "ACTIVE"
    for _ in range(200):  # a live migration is ACTIVE (MIGRATING) from the start
        moved = await wait_for(api, members[0]["id"], expected, user="admin")
        if moved["OS-EXT-SRV-ATTR:host"] != hosts[0]:
            break
        await asyncio.sleep(0.02)
    free = set(MULTI_HOSTS) - set(hosts)
    assert {moved["OS-EXT-SRV-ATTR:host"]} == free


@pytest.mark.parametrize("kind", ["migrate", "live"])
async def test_a_moving_member_does_not_count_in_its_own_group(
        multi_host_api: Api, kind: str) -> None:
    """The only member of an affinity group may move: its own claim on the source
    is not a member's that the destination must join."""
    api = multi_host_api
    group = await make_group(api, "affinity")
    sid = (await boot_into(api, {"group": group}))["id"]
    source = await host_of(api, sid)
    target = next(h for h in MULTI_HOSTS if h != source)
    assert (await move(api, sid, kind, target)).status_code == 202
    for _ in range(200):
        if await host_of(api, sid) == target:
            break
        await asyncio.sleep(0.02)
    assert await host_of(api, sid) == target
