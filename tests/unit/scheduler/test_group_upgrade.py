"""RequestSpec 1.2 types `group` (SchedulingGroup) where 1.1 carried a plain dict of
the same keys: a conductor of the previous release, and a scheduler of it, still
understand this one."""

from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.compute.payloads import RequestSpec
from novalet.compute.scheduling_group import SchedulingGroup
from novalet.db import server_groups as db_groups
from novalet.db.models import ServerGroup
from novalet.scheduler.manager import NoValidHost

OLD_GROUP = {"uuid": "g-anti", "policy": "anti-affinity", "max_server_per_host": 1}


def old_spec(uuids: list[str], **extra: Any) -> dict[str, Any]:
    """A spec exactly as the previous release's conductor sent it: untagged, its
    group a plain dict."""
    return {"instance_uuids": uuids, "project_id": "p", "user_id": "u", "vcpus": 1,
            "memory_mb": 64, "disk_gb": 1, "availability_zone": None, "force_host": None,
            "force_node": None, "scheduler_hints": {"group": OLD_GROUP["uuid"]},
            "extra_specs": {}, "group": dict(OLD_GROUP), "group_hosts": {},
            "hinted_hosts": {}, **extra}


async def make_group(db: Any, members: list[str]) -> None:
    await db_groups.create(db, ServerGroup(uuid=OLD_GROUP["uuid"], name="g", project_id="p",
                                           user_id="u", policy="anti-affinity", rules={}))
    async with db.transaction() as s:
        await db_groups.add_members(s, OLD_GROUP["uuid"], members)


def test_an_untagged_group_dict_reads_as_the_part_and_goes_out_unchanged() -> None:
    spec = RequestSpec.from_dict(old_spec(["i1"]))
    assert spec.group == SchedulingGroup(uuid="g-anti", policy="anti-affinity",
                                         max_server_per_host=1)
    assert spec.group_generation is None
    # The wire form of the group is the dict the previous release knew, key for key
    # (its scheduler reads it as that dict; no scheduler-side key goes out in it).
    sent = spec.to_dict()
    assert sent["group"] == OLD_GROUP and sent["_version"] == "1.2"
    assert sent["group_generation"] is None  # a 1.1 reader ignores the unknown field
    assert spec.to_dict("1.1")["group"] == OLD_GROUP and \
        "group_generation" not in spec.to_dict("1.1")


def test_a_group_dict_without_the_rule_reads_with_its_default() -> None:
    data = old_spec(["i1"], group={"uuid": "g", "policy": "affinity"})
    assert RequestSpec.from_dict(data).group == SchedulingGroup(uuid="g", policy="affinity")


async def test_previous_release_conductor_spec_keeps_its_group_policy(
        scheduler: Any) -> None:
    """Reproducer of the typing: the scheduler of this release reads the group of an
    untagged spec and holds its anti-affinity (one member per host over h1, h2)."""
    manager, db = scheduler
    await make_group(db, ["i1", "i2", "i3"])
    chosen = await manager.select_destinations(RequestContext(), old_spec(["i1", "i2"]))
    assert sorted(c["host"] for c in chosen) == ["h1", "h2"]
    with pytest.raises(NoValidHost, match="max_server_per_host is 1"):
        await manager.select_destinations(RequestContext(), old_spec(["i3"]))
    generation, counted = await db_groups.member_hosts(db, OLD_GROUP["uuid"], exclude=[])
    assert counted == {"h1": 1, "h2": 1} and generation == 2  # both claims were guarded
