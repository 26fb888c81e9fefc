"""api + conductor + scheduler + three compute hosts (fake driver), each its own
process over RabbitMQ and PostgreSQL: spreading, liveness and recovery."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.multihost.conftest import Cloud, backing_script, deployment, wait_for

pytestmark = pytest.mark.integration
COMPUTES = ["compute-1", "compute-2", "compute-3"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str]
          ) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("multihost")
    # Builds take a while, so there is something in flight to interrupt.
    for dep, database in deployment(root, backing, COMPUTES,
                                    options={"fake": {"spawn_delay": 1.0}}):
        yield Cloud(dep, database)


def boot_many(cloud: Cloud, count: int, prefix: str) -> list[str]:
    with ThreadPoolExecutor(10) as pool:
        return [i for ids in pool.map(lambda n: cloud.boot(f"{prefix}-{n}"), range(count))
                for i in ids]


def state_of(cloud: Cloud, host: str) -> str:
    return str(cloud.services()[(host, "nova-compute")]["state"])


def allocated_consumers(cloud: Cloud) -> set[str]:
    return {row[0] for row in cloud.sql("SELECT DISTINCT consumer_id FROM allocations")}


def test_sixty_servers_spread_and_a_killed_compute_is_avoided(cloud: Cloud) -> None:
    ids = boot_many(cloud, 60, "spread")
    servers = cloud.wait_settled(ids)
    assert {s["status"] for s in servers.values()} == {"ACTIVE"}
    per_host = collections.Counter(s["OS-EXT-SRV-ATTR:host"] for s in servers.values())
    assert set(per_host) == set(COMPUTES) and min(per_host.values()) >= 10, per_host
    assert all(state_of(cloud, h) == "up" for h in COMPUTES)

    cloud.d.kill("compute", "compute-3")
    started = time.monotonic()
    wait_for(lambda: state_of(cloud, "compute-3") == "down", 30, "compute-3 never down")
    print(f"compute-3 shown down {time.monotonic() - started:.1f}s after kill -9")
    later = cloud.wait_settled(boot_many(cloud, 9, "after-kill"))
    assert {s["status"] for s in later.values()} == {"ACTIVE"}
    assert "compute-3" not in {s["OS-EXT-SRV-ATTR:host"] for s in later.values()}

    cloud.d.start("compute", "compute-3")
    wait_for(lambda: state_of(cloud, "compute-3") == "up", 30, "compute-3 never up again")
    assert cloud.servers()[ids[0]]["status"] == "ACTIVE"  # guests lived on
    cloud.delete_all()
    assert allocated_consumers(cloud) == set()


def assert_settled_honestly(cloud: Cloud, ids: list[str]) -> collections.Counter[str]:
    """Every accepted server is ACTIVE, or ERROR with a fault; allocations are held
    by exactly the ACTIVE ones."""
    servers = cloud.wait_settled(ids, timeout=180)
    assert set(servers) == set(ids), "an accepted server vanished"
    for server in servers.values():
        assert server["status"] in ("ACTIVE", "ERROR"), server["status"]
        if server["status"] == "ERROR":
            assert server.get("fault", {}).get("message"), server
    active = {i for i, s in servers.items() if s["status"] == "ACTIVE"}
    assert allocated_consumers(cloud) == active
    return collections.Counter(s["status"] for s in servers.values())


def test_rabbitmq_restart_while_thirty_servers_build(cloud: Cloud) -> None:
    with ThreadPoolExecutor(1) as pool:
        booting = pool.submit(boot_many, cloud, 30, "restart")
        time.sleep(1.0)  # some accepted and building, some still to be posted
        print(backing_script("restart", "rabbitmq").strip())
        ids = booting.result()
    assert len(ids) == 30
    outcome = assert_settled_honestly(cloud, ids)
    print(f"after a broker restart: {dict(outcome)}")
    wait_for(lambda: all(state_of(cloud, h) == "up" for h in COMPUTES), 30,
             "computes not up again after the broker restart")
    cloud.delete_all()


def test_conductor_killed_mid_build_leaves_nothing_stuck(cloud: Cloud) -> None:
    ids = boot_many(cloud, 20, "conductor")
    time.sleep(0.5)
    statuses = collections.Counter(s["status"] for s in cloud.servers().values())
    cloud.d.kill("conductor")
    print(f"conductor killed with {dict(statuses)}")
    assert statuses["BUILD"] > 0, "nothing was building when the conductor died"
    time.sleep(1)
    cloud.d.start("conductor")
    outcome = assert_settled_honestly(cloud, ids)
    print(f"after kill -9 of the conductor: {dict(outcome)}")
    cloud.delete_all()
    assert allocated_consumers(cloud) == set()
