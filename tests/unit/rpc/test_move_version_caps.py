"""The move methods are refused while `[upgrade_levels]` holds a service below the
version that added them, without a message an old service could not serve: compute
1.5 (move steps, force-complete, abort; 1.7 for MoveOrder 1.1 and the MoveTarget a
destination answers, checked before the source gets it), conductor 1.4 (moves; a host's progress
reports are dropped), scheduler 1.1 (select_move_destination)."""

from __future__ import annotations

from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.move_payloads import (MIGRATION, MoveOrder, MoveRequest, MoveSpec,
                                           MoveTarget, ProgressReport)
from novalet.compute.payloads import InstancePayload, RequestSpec
from novalet.conductor.rpcapi import ConductorAPI, UnsupportedConductorVersion
from novalet.rpc.inprocess import InProcessBus
from novalet.rpc.models import IncompatibleMessage
from novalet.scheduler.rpcapi import SchedulerAPI, SchedulerTooOld
from tests.unit.conductor.conftest import FLAVOR

CTX = RequestContext.admin()


class Deaf:
    """A service of the previous release: it records whatever reaches it."""

    RPC_VERSION = "1.0"

    def __init__(self) -> None:
        self.got: list[str] = []

    def __getattr__(self, name: str) -> Any:
        async def method(ctx: RequestContext, **kwargs: Any) -> None:
            self.got.append(name)
        return method


def capped(service: str, level: str) -> config.Config:
    conf = config.Config()
    conf.set("upgrade_levels", service, level)
    return conf


@pytest.fixture
async def bus() -> Any:
    bus = InProcessBus(default_timeout=2)
    yield bus
    await bus.close()


def order() -> MoveOrder:
    instance = InstancePayload(
        uuid="u1", display_name="vm", hostname="vm", project_id="p", user_id="u",
        image_ref="img", flavor=FlavorPayload.from_dict(FLAVOR), vm_state="active",
        task_state="resize_migrating", power_state=1, host="h1", node="h1",
        availability_zone="nova")
    return MoveOrder(migration_uuid="m1", instance=instance, source_host="h1",
                     dest_host="h2", dest_node="h2", flavor=FlavorPayload.of(FLAVOR))


async def test_compute_below_1_5_gets_no_move_step(bus: InProcessBus) -> None:
    host = Deaf()
    await bus.serve("compute.h1", host)
    api = compute_rpcapi.ComputeAPI(bus, capped("compute", "1.4"))
    with pytest.raises(compute_rpcapi.HostTooOld, match="move_out"):
        await api.move_step(CTX, "h1", "move_out", order())
    with pytest.raises(compute_rpcapi.HostTooOld):
        await api.live_migration_force_complete(CTX, "h1", "u1")
    with pytest.raises(compute_rpcapi.HostTooOld):
        await api.live_migration_abort(CTX, "h1", "u1")
    assert host.got == []


async def test_conductor_below_1_4_gets_no_move(bus: InProcessBus) -> None:
    conductor = Deaf()
    await bus.serve("conductor", conductor)
    api = ConductorAPI(bus, capped("conductor", "1.3"))
    with pytest.raises(UnsupportedConductorVersion, match="1.4"):
        await api.move_server(CTX, MoveRequest("u1", MIGRATION))
    with pytest.raises(UnsupportedConductorVersion):
        await api.confirm_move(CTX, "u1")
    with pytest.raises(UnsupportedConductorVersion):
        await api.revert_move(CTX, "u1")
    await api.migration_progress(CTX, ProgressReport(migration_uuid="m1",
                                                     instance_uuid="u1"))
    assert conductor.got == []


async def test_scheduler_below_1_1_gets_no_move(bus: InProcessBus) -> None:
    scheduler = Deaf()
    await bus.serve("scheduler", scheduler)
    api = SchedulerAPI(bus, capped("scheduler", "1.0"))
    spec = RequestSpec(instance_uuids=["u1"], project_id="p", user_id="u", vcpus=1,
                       memory_mb=1, disk_gb=1)
    with pytest.raises(SchedulerTooOld):
        await api.select_move_destination(CTX, MoveSpec(spec=spec, consumer="c"))
    assert scheduler.got == []


class Preparing:
    """A destination that answers its prepare steps with `answer`, and records the
    MoveOrder versions it was sent."""

    RPC_VERSION = "1.7"

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.versions: list[str] = []

    async def prep_move(self, ctx: RequestContext, order: dict[str, Any]) -> Any:
        self.versions.append(order["_version"])
        return self.answer

    async def move_out(self, ctx: RequestContext, order: dict[str, Any]) -> Any:
        self.versions.append(order["_version"])
        return self.answer  # not a prepare step: never read as a target


async def test_compute_1_7_relays_a_checked_target(bus: InProcessBus) -> None:
    host = Preparing(MoveTarget(address="192.0.2.7", nbd_port=49153, disks=["root"],
                                overlays=["root"]).to_dict())
    await bus.serve("compute.h2", host)
    api = compute_rpcapi.ComputeAPI(bus, config.Config())
    target = await api.move_step(CTX, "h2", "prep_move", order())
    assert target == MoveTarget(address="192.0.2.7", nbd_port=49153, disks=["root"],
                                overlays=["root"])
    assert await api.move_step(CTX, "h2", "move_out", order()) is None
    assert host.versions == ["1.1", "1.1"]


async def test_compute_1_6_gets_move_order_1_0(bus: InProcessBus) -> None:
    host = Preparing({})
    await bus.serve("compute.h2", host)
    api = compute_rpcapi.ComputeAPI(bus, capped("compute", "1.6"))
    sent = order()
    sent.target = MoveTarget(address="h1", memory_port=49152)
    await api.move_step(CTX, "h2", "prep_move", sent)
    assert host.versions == ["1.0"]


@pytest.mark.parametrize("target", [
    {"address": "x;rm -rf /", "memory_port": 1},  # not a host name
    {"address": "exec:sh", "memory_port": 1},
    {"address": "192.0.2.7", "memory_port": 70000},
    {"address": "192.0.2.7", "nbd_port": 2, "disks": ["../root"]},
    {"address": "192.0.2.7", "disks": ["root"]},  # no NBD port
    {"address": "192.0.2.7", "nbd_port": 2, "disks": ["root"], "overlays": ["swap"]},
    {"address": "", "memory_port": 49152},
    {"address": "192.0.2.7", "memory_port": "49152"},  # a string: refused by type
    {"address": "fe80::1%x]:4444?tls-creds=y,ipv4=on", "memory_port": 5},  # a zone id
])
async def test_a_destination_cannot_hand_the_source_a_bad_target(
        bus: InProcessBus, target: dict[str, Any]) -> None:
    await bus.serve("compute.h2", Preparing(target))
    api = compute_rpcapi.ComputeAPI(bus, config.Config())
    with pytest.raises(IncompatibleMessage):
        await api.move_step(CTX, "h2", "prep_move", order())
