"""LostBuilds: the builds a kill -9 took the cast of are re-driven from their kept spec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.compute.payloads import RequestSpec
from novalet.compute.scheduling_group import SchedulingGroup
from novalet.conductor.recovery import LostBuilds
from novalet.db import migrate
from novalet.db.engine import Database
from novalet.db.models import Instance
from tests.unit.conductor.conftest import make_instance

KEPT = RequestSpec(instance_uuids=[], project_id="p1", user_id="u", vcpus=1, memory_mb=64,
                   disk_gb=1, availability_zone="nova", force_host="h2", force_node="n2",
                   scheduler_hints={"group": "g-1"},
                   group=SchedulingGroup(uuid="g-1", policy="affinity"))


def scheduling(uuid: str, reservation: str, spec: dict[str, Any] | None) -> Instance:
    row = make_instance(uuid, "", "p1")
    row.host = row.node = None
    row.vm_state, row.task_state, row.power_state = "building", "scheduling", 0
    row.reservation_id, row.request_spec = reservation, spec
    return row


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'c.sqlite'}")
    await migrate.sync(database)
    yield database
    await database.close()


async def redrive(db: Database) -> tuple[int, list[RequestSpec]]:
    sent: list[RequestSpec] = []

    async def build(_ctx: RequestContext, spec: dict[str, Any]) -> None:
        sent.append(RequestSpec.from_dict(spec))

    lost = LostBuilds(db, build)
    lost.serving()
    return await lost.run(utcnow()), sent


async def test_a_redriven_build_is_scheduled_from_the_spec_create_kept(db: Database
                                                                      ) -> None:
    """Reproducer: the spec was rebuilt from the asked zone and lost the host of 2.74."""
    async with db.transaction() as s:
        s.add_all([scheduling(u, "r-1", KEPT.to_dict()) for u in ("a", "b")])
    count, sent = await redrive(db)
    assert count == 2
    (spec,) = sent
    assert sorted(spec.instance_uuids) == ["a", "b"]
    assert (spec.availability_zone, spec.force_host, spec.force_node) == ("nova", "h2", "n2")
    assert spec.scheduler_hints == KEPT.scheduler_hints and spec.group == KEPT.group


async def test_a_build_from_before_specs_were_kept_is_left_to_the_timeout(db: Database
                                                                          ) -> None:
    async with db.transaction() as s:
        s.add_all([scheduling("old", "r-1", None), scheduling("new", "r-2", KEPT.to_dict())])
    count, sent = await redrive(db)
    assert count == 1
    assert [s.instance_uuids for s in sent] == [["new"]]


async def test_a_spec_kept_before_the_group_was_typed_is_still_redriven(db: Database
                                                                        ) -> None:
    """A row's spec as ComputeAPI.create kept it before RequestSpec 1.2 (its group a
    plain dict): the build is re-driven with that group, the same keys on the wire."""
    old_group = {"uuid": "g-1", "policy": "anti-affinity", "max_server_per_host": 2}
    kept = {"instance_uuids": [], "project_id": "p1", "user_id": "u", "vcpus": 1,
            "memory_mb": 64, "disk_gb": 1, "availability_zone": "nova", "force_host": None,
            "force_node": None, "scheduler_hints": {"group": "g-1"}, "extra_specs": {},
            "group": old_group, "group_hosts": {}, "hinted_hosts": {}, "_version": "1.1"}
    async with db.transaction() as s:
        s.add(scheduling("a", "r-1", kept))
    sent_dicts: list[dict[str, Any]] = []

    async def build(_ctx: RequestContext, spec: dict[str, Any]) -> None:
        sent_dicts.append(spec)

    lost = LostBuilds(db, build)
    lost.serving()
    assert await lost.run(utcnow()) == 1
    (sent,) = sent_dicts
    assert sent["group"] == old_group and sent["instance_uuids"] == ["a"]
    assert RequestSpec.from_dict(sent).group == SchedulingGroup(
        uuid="g-1", policy="anti-affinity", max_server_per_host=2)
