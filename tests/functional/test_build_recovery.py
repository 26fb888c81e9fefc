"""Builds a dead service left behind, and builds whose messages came twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.compute.payloads import RequestSpec
from novalet.db import placement
from novalet.db.models import Service
from novalet.service.allinone import AllInOne
from tests.functional.conftest import Api, boot, ensure_image, make_conf, wait_for
from tests.integration.conftest import keystone_token, start_cloud, stop_cloud

SLOW = 30.0  # seconds the fake hypervisor takes: the build is still running


@pytest.fixture
async def cloud(state_dir: Path) -> AsyncIterator[AllInOne]:
    aio = AllInOne(make_conf(state_dir, fake__spawn_delay=SLOW,
                             conductor__scheduling_timeout=0.5), in_process_http=True)
    await aio.start()
    try:
        yield aio
    finally:
        await aio.stop()


async def server(api: Api, server_id: str) -> dict[str, Any]:
    resp = await api.request("GET", f"/compute/v2.1/servers/{server_id}", version="2.100")
    return dict(resp.json()["server"])


async def spawning(api: Api) -> dict[str, Any]:
    created = await boot(api, "slow", wait=None)
    for _ in range(200):
        found = await server(api, created["id"])
        if found["OS-EXT-STS:task_state"] == "spawning":
            return found
        await asyncio.sleep(0.02)
    raise AssertionError("the build never reached spawning")


async def silence_the_compute_host(cloud: AllInOne) -> None:
    """As if the compute service died an hour ago."""
    await cloud.compute.stop()
    async with cloud.services.db.transaction() as s:
        await s.execute(update(Service).where(Service.binary == "nova-compute").values(
            last_seen_up=utcnow() - dt.timedelta(hours=1)))


async def test_a_build_on_a_host_that_went_down_fails_with_a_fault(
        api: Api, cloud: AllInOne) -> None:
    building = await spawning(api)
    assert await placement.allocations_of(cloud.services.db, building["id"])
    await silence_the_compute_host(cloud)
    cloud.services.bus.connected_since = utcnow() - dt.timedelta(hours=1)

    assert await cloud.conductor.recovery.run_once() == 1
    failed = await server(api, building["id"])
    assert failed["status"] == "ERROR"
    assert "fake-host-1 stopped reporting" in failed["fault"]["message"]
    assert await placement.allocations_of(cloud.services.db, building["id"]) == {}
    assert await cloud.conductor.recovery.run_once() == 0  # once is enough


async def test_silence_just_after_the_bus_came_back_is_not_death(
        api: Api, cloud: AllInOne) -> None:
    building = await spawning(api)
    await silence_the_compute_host(cloud)
    cloud.services.bus.connected_since = utcnow()  # a broker restart silenced everyone
    assert await cloud.conductor.recovery.run_once() == 0
    assert (await server(api, building["id"]))["status"] == "BUILD"


async def test_a_build_never_scheduled_fails_after_the_timeout(
        api: Api, cloud: AllInOne, monkeypatch: pytest.MonkeyPatch) -> None:
    async def lost(*_args: Any) -> None:
        pass  # the cast that never arrived

    monkeypatch.setattr(cloud.services.compute.conductor, "build_instances", lost)
    created = await boot(api, "lost", wait=None)
    await asyncio.sleep(0.6)
    assert await cloud.conductor.recovery.run_once() == 1
    failed = await server(api, created["id"])
    assert failed["status"] == "ERROR"
    assert "not scheduled within 0.5 seconds" in failed["fault"]["message"]


async def test_a_redelivered_build_cast_builds_nothing_twice(api: Api, cloud: AllInOne
                                                             ) -> None:
    building = await spawning(api)
    db = cloud.services.db
    claimed = await placement.allocations_of(db, building["id"])
    spec = RequestSpec(instance_uuids=[building["id"]], project_id="p", user_id="u",
                       vcpus=1, memory_mb=512, disk_gb=1)
    await cloud.conductor.build_instances(RequestContext.admin(), spec.to_dict())
    await asyncio.sleep(0.1)
    assert await placement.allocations_of(db, building["id"]) == claimed
    assert (await server(api, building["id"]))["OS-EXT-STS:task_state"] == "spawning"


async def test_a_second_claim_of_a_consumer_replaces_the_first(cloud: AllInOne) -> None:
    db = cloud.services.db
    (provider,) = await placement.summaries(db)
    assert await placement.claim(db, "consumer", provider.uuid, {"VCPU": 2},
                                 provider.generation)
    assert await placement.claim(db, "consumer", provider.uuid, {"VCPU": 3},
                                 provider.generation + 1)
    assert await placement.allocations_of(db, "consumer") == {"VCPU": 3}


async def test_a_mark_active_call_run_twice_keeps_the_guest(
        state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call published again across a broker restart can run twice: the caller may
    get the second run's conflict (the first made it ACTIVE). That is not a delete."""
    aio = AllInOne(make_conf(state_dir / "twice"), in_process_http=True)
    await aio.start()
    try:
        conductor = aio.compute.conductor
        real_update = conductor.instance_update

        async def run_twice(ctx: Any, uuid: str, values: dict[str, Any],
                            expected_task_state: Any = "_unset") -> None:
            await real_update(ctx, uuid, values, expected_task_state)
            if values.get("vm_state") == "active":
                await real_update(ctx, uuid, values, expected_task_state)  # Conflict
        monkeypatch.setattr(conductor, "instance_update", run_twice)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=aio.app),
                                     base_url="http://novalet.test") as http:
            built = await boot(Api(aio, http), "run-twice")
            assert built["status"] == "ACTIVE"
            assert built["id"] in await aio.compute.driver.list_instances()
    finally:
        await aio.stop()


async def _post(api: Api, version: str, hints: dict[str, Any] | None = None,
                **server: Any) -> list[str]:
    """Three servers of one create request (admin); their ids."""
    body: dict[str, Any] = {"server": {"name": "lost", "imageRef": await ensure_image(api),
                                       "flavorRef": "1", "networks": "none",
                                       "min_count": 3, "max_count": 3,
                                       "return_reservation_id": True, **server}}
    if hints:
        body["os:scheduler_hints"] = hints
    resp = await api.request("POST", "/compute/v2.1/servers", user="admin", version=version,
                             json=body)
    assert resp.status_code == 202, resp.text
    reservation = resp.json()["reservation_id"]
    resp = await api.request("GET", f"/compute/v2.1/servers?reservation_id={reservation}",
                             user="admin", version=version)
    return [s["id"] for s in resp.json()["servers"]]


async def test_a_redriven_build_keeps_its_asked_host_zone_hints_and_group(
        multi_host_api: Api, multi_host_cloud: AllInOne,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reproducer: a re-driven build lost the host of 2.74 (`host` in POST /servers),
    as its spec was rebuilt from the asked zone only; now the spec create made is kept."""
    api, cloud = multi_host_api, multi_host_cloud

    async def lost(*_args: Any) -> None:
        pass  # the cast a kill -9 took with it

    monkeypatch.setattr(cloud.services.compute.conductor, "build_instances", lost)
    resp = await api.request("POST", "/compute/v2.1/os-server-groups", user="admin",
                             version="2.64", json={"server_group": {
                                 "name": "together", "policy": "affinity"}})
    group = resp.json()["server_group"]["id"]
    on_host_3 = await _post(api, "2.74", host="fake-host-3")
    on_host_2 = await _post(api, "2.74", availability_zone="nova:fake-host-2")
    grouped = await _post(api, "2.74", hints={"group": group})
    monkeypatch.undo()

    sent: list[RequestSpec] = []
    real_build = cloud.conductor.build_instances

    async def build(ctx: RequestContext, spec: dict[str, Any]) -> None:
        sent.append(RequestSpec.from_dict(spec))
        await real_build(ctx, spec)

    monkeypatch.setattr(cloud.conductor.lost_builds, "build", build)
    assert await cloud.conductor.lost_builds.run(utcnow()) == 9
    hosts = {}
    for server_id in on_host_3 + on_host_2 + grouped:
        built = await wait_for(api, server_id, "ACTIVE", user="admin")
        hosts[server_id] = built["OS-EXT-SRV-ATTR:host"]
    assert {hosts[i] for i in on_host_3} == {"fake-host-3"}
    assert {hosts[i] for i in on_host_2} == {"fake-host-2"}
    assert len({hosts[i] for i in grouped}) == 1  # affinity: one host for all three
    (grouped_spec,) = [s for s in sent if set(s.instance_uuids) == set(grouped)]
    assert grouped_spec.scheduler_hints == {"group": group}
    assert grouped_spec.group and grouped_spec.group.policy == "affinity"


def _up_args(root: Path, scheduling_delay: float = 0.0) -> tuple[str, ...]:
    conf = root / f"up-{scheduling_delay:g}.conf"
    conf.write_text("[quota]\ninstances = 100\ncores = 200\nram = 1000000\n"
                    f"[fake]\nextra_hosts = 1\nscheduling_delay = {scheduling_delay}\n")
    return ("--driver", "fake", "--metadata-port", "0", "--config-file", str(conf))


def _headers(http: httpx.Client) -> dict[str, str]:
    return {"X-Auth-Token": keystone_token(http, "admin"),
            "OpenStack-API-Version": "compute 2.100"}


def _servers(http: httpx.Client, headers: dict[str, str], ids: list[str]
             ) -> list[dict[str, Any]]:
    return [http.get(f"/compute/v2.1/servers/{i}", headers=headers).json()["server"]
            for i in ids]


def _create_then_kill(state: Path, count: int) -> list[str]:
    """`count` creates accepted by a real `novalet up` (in-process bus) whose conductor
    waits 60 s before scheduling, the last one for the host fake-host-2 (2.74); then,
    with every build still scheduling, kill -9."""
    cloud = start_cloud(state, *_up_args(state.parent, scheduling_delay=60))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{cloud.port}", timeout=30) as http:
            headers = _headers(http)
            resp = http.post("/image/v2/images", headers=headers, json={
                "name": "img", "disk_format": "qcow2", "container_format": "bare",
                "visibility": "public"})
            image_id = resp.json()["id"]
            resp = http.put(f"/image/v2/images/{image_id}/file", content=b"disk" * 256,
                            headers={**headers, "Content-Type": "application/octet-stream"})
            assert resp.status_code == 204, resp.text

            def create(index: int) -> str:
                body: dict[str, Any] = {"server": {
                    "name": "lost", "imageRef": image_id, "flavorRef": "1",
                    "networks": "none"}}
                if index == count - 1:
                    body["server"]["host"] = "fake-host-2"
                created = http.post("/compute/v2.1/servers", headers=headers, json=body)
                assert created.status_code == 202, created.text
                return str(created.json()["server"]["id"])

            with ThreadPoolExecutor(count) as pool:
                ids = list(pool.map(create, range(count)))
            waiting = [(s["status"], s["OS-EXT-STS:task_state"], s["OS-EXT-SRV-ATTR:host"])
                       for s in _servers(http, headers, ids)]
            assert waiting == [("BUILD", "scheduling", None)] * count, waiting
    finally:
        cloud.process.kill()  # kill -9: the in-process bus loses what it held
        cloud.process.wait()
    return ids


def test_builds_lost_to_kill_9_are_redriven_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ids = _create_then_kill(state, 20)
    cloud = start_cloud(state, *_up_args(state.parent))
    deadline = time.monotonic() + 30  # well inside the 300 s scheduling timeout
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{cloud.port}", timeout=30) as http:
            headers = _headers(http)
            while True:
                servers = _servers(http, headers, ids)
                if all(s["status"] == "ACTIVE" for s in servers):
                    break
                assert time.monotonic() < deadline, (
                    [(s["id"], s["status"], s["OS-EXT-STS:task_state"]) for s in servers
                     if s["status"] != "ACTIVE"], cloud.tail())
                time.sleep(0.2)
        log = cloud.log.read_text()
        assert all(f"Re-driving the build of {i}" in log for i in ids), cloud.tail()
        assert servers[-1]["OS-EXT-SRV-ATTR:host"] == "fake-host-2"  # its 2.74 host
    finally:
        assert stop_cloud(cloud) == 0, cloud.tail()
