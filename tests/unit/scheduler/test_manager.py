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


async def test_a_compute_host_cannot_call_the_scheduler(scheduler: Any) -> None:
    """Finding: the scheduler served compute hosts' bus users with no check (amq.default
    routes to its queue too), so a host could claim or replace other instances'
    allocations through select_destinations. Hosts are refused by the bus."""
    from novalet.rpc import bus as rpc_bus
    from novalet.rpc.identity import Senders

    manager, db = scheduler
    message = rpc_bus.make_message(RequestContext(), "select_destinations", "1.0",
                                   {"spec": spec(1)})
    reply = await rpc_bus.dispatch(manager, "scheduler", message, "compute-h1", Senders())
    assert reply["error"]["class"] == "NotAuthorizedForHost"
    assert all(not p.used for p in await placement.summaries(db))
    reply = await rpc_bus.dispatch(manager, "scheduler", message, "novalet", Senders())
    assert len(reply["result"]) == 1


async def test_answers_destination_models(scheduler: Any) -> None:
    """Finding (issue 14, item 5): the answer was a hand-built dict, untagged and
    with a field Destination lacks; now each is a Destination model."""
    from novalet.compute.payloads import Destination

    manager, _ = scheduler
    (chosen,) = await manager.select_destinations(RequestContext(), spec(1))
    assert chosen == Destination.from_dict(chosen).to_dict()
    assert chosen["_version"] == Destination.VERSION
