"""select_destinations: spreads, claims atomically, and is all-or-nothing."""

from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.compute.payloads import RequestSpec
from novalet.db import placement
from novalet.scheduler.manager import NoValidHost


def spec(n: int, ram: int = 1024) -> dict[str, Any]:
    return RequestSpec(instance_uuids=[f"i{k}" for k in range(n)], project_id="p",
                       user_id="u", vcpus=1, memory_mb=ram, disk_gb=1).to_dict()


async def test_spreads_across_hosts_by_free_ram(scheduler: Any) -> None:
    manager, db = scheduler
    chosen = await manager.select_destinations(RequestContext(), spec(4))
    hosts = [c["host"] for c in chosen]
    assert sorted(hosts) == ["h1", "h1", "h2", "h2"]
    assert hosts[0] != hosts[1]
    used = {p.host: p.used for p in await placement.summaries(db)}
    assert used == {"h1": {"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 2},
                    "h2": {"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 2}}


async def test_all_or_nothing(scheduler: Any) -> None:
    manager, db = scheduler
    with pytest.raises(NoValidHost) as err:
        await manager.select_destinations(RequestContext(), spec(3, ram=4096))
    assert "ResourcesFilter removed 2 host(s)" in str(err.value)
    assert all(p.used == {} for p in await placement.summaries(db))


async def test_claims_made_elsewhere_are_seen(scheduler: Any) -> None:
    manager, db = scheduler
    (h1, h2) = await placement.summaries(db)
    assert await placement.claim(db, "other", h1.uuid, {"MEMORY_MB": 4096}, h1.generation)
    chosen = await manager.select_destinations(RequestContext(), spec(2))
    assert [c["host"] for c in chosen] == [h2.host, h2.host]
