"""Finding: every method was version 1.0, so a conductor and a compute host of
different releases could not be told apart. A compute host of the previous
release (conductor RPC 1.0, untyped dicts) keeps working with this conductor."""

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import select

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute import payloads
from novalet.compute.payloads import ComputeNodePayload, InstancePayload, Inventory
from novalet.conductor.rpcapi import VERSION, ConductorAPI
from novalet.db import compute_nodes, instances, models
from novalet.rpc import bus as rpc_bus
from novalet.rpc.bus import NoSuchMethod
from novalet.rpc.inprocess import InProcessBus
from tests.unit.conductor.conftest import Served


async def old_call(served: Served, method: str, args: dict[str, Any]) -> Any:
    """A call exactly as a compute host of the previous release made it."""
    bus = served.bus.as_user("compute-h1")
    return await bus.call(RequestContext.admin(), "conductor", method, args, version="1.0")


async def test_previous_release_compute_talks_to_current_conductor(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert VERSION == "1.3"
    # 1.0 heartbeat: no rpc_version (added in 1.1) -> its default, logged as old.
    await old_call(served, "service_heartbeat", {"host": "h1", "binary": "nova-compute",
                                                 "topic": "compute.h1"})
    assert served.conductor.service_versions[("h1", "nova-compute")] is None
    assert "a release before versions were reported" in caplog.text
    # 1.0 node report: an untagged dict, not yet a ComputeNodePayload.
    await old_call(served, "compute_node_update", {"node": {
        "uuid": "rp-h1", "host": "h1", "hypervisor_hostname": "h1",
        "hypervisor_type": "fake", "hypervisor_version": 1000, "host_ip": None,
        "cpu_info": {}}})
    assert [n.host for n in await compute_nodes.list_nodes(served.db)] == ["h1"]
    # Its instances, as the InstancePayload version conductor 1.0 replied with.
    rows = await old_call(served, "instances_on_host", {"host": "h1"})
    assert [(r["uuid"], r["_version"]) for r in rows] == [("inst-1", "1.2")]
    await old_call(served, "instance_update", {"uuid": "inst-1", "values": {
        "task_state": "rebooting"}, "expected_task_state": "_unset"})
    assert (await instances.get(served.db, "inst-1")).task_state == "rebooting"
    # The host authorisation holds for old senders too.
    with pytest.raises(Exception, match="may not call"):
        await old_call(served, "instances_on_host", {"host": "h2"})


async def test_current_compute_sends_typed_1_1(served: Served) -> None:
    api = ConductorAPI(served.bus.as_user("compute-h1"), config.Config())
    await api.service_heartbeat(RequestContext.admin(), "h1", "nova-compute", "compute.h1",
                                compute_rpcapi.VERSION)
    assert served.conductor.service_versions[("h1", "nova-compute")] == "1.2"
    await api.compute_node_update(RequestContext.admin(), ComputeNodePayload(
        uuid="rp-h1", host="h1", hypervisor_hostname="h1", hypervisor_type="fake"))


async def test_message_newer_than_the_conductor_is_refused(served: Served) -> None:
    with pytest.raises(NoSuchMethod):
        await served.bus.call(RequestContext.admin(), "conductor", "instances_on_host",
                              {"host": "h1"}, version="1.4")
    with pytest.raises(NoSuchMethod):
        await served.bus.call(RequestContext.admin(), "conductor", "instances_on_host",
                              {"host": "h1"}, version="2.0")


class OldCompute:
    """A compute host of the previous release: RPC 1.0 only."""

    RPC_VERSION = "1.0"

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def external_instance_event(self, ctx: RequestContext,
                                      events: list[dict[str, Any]]) -> None:
        self.events.extend(events)


def capped(level: str | None) -> config.Config:
    conf = config.Config()
    if level:
        conf.set("upgrade_levels", "compute", level)
    return conf


EVENT = {"name": "power-update", "server_uuid": "u", "tag": "POWER_OFF",
         "status": "completed"}


async def test_upgrade_level_caps_what_is_sent_to_old_hosts() -> None:
    bus = InProcessBus(default_timeout=5)
    old = OldCompute()
    await bus.serve("compute.h1", old)
    try:
        # no cap: 1.1, which the old host refuses
        await compute_rpcapi.ComputeAPI(bus, capped(None)).external_instance_event(
            RequestContext(), "h1", [EVENT])
        await compute_rpcapi.ComputeAPI(bus, capped("1.0")).external_instance_event(
            RequestContext(), "h1", [EVENT])
        await asyncio.sleep(0.1)
        assert [e["name"] for e in old.events] == ["power-update"]
        assert old.events[0]["_version"] == "1.0"
    finally:
        await bus.close()


async def test_upgrade_level_caps_the_instance_version_sent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Instances go to a capped host as the InstancePayload version its RPC version
    carries (payloads.INSTANCE_VERSIONS, one table). Today both RPC versions carry
    1.2; a table where 1.0 carried 1.1 shows the cap reaching the payload."""
    monkeypatch.setitem(payloads.INSTANCE_VERSIONS, "1.0", "1.1")
    bus = InProcessBus(default_timeout=5)
    seen: list[dict[str, Any]] = []

    class Host(OldCompute):
        async def terminate_instance(self, ctx: RequestContext,
                                     instance: dict[str, Any]) -> None:
            seen.append(instance)

    await bus.serve("compute.h1", Host())
    instance = InstancePayload(
        uuid="u", display_name="d", hostname="d", project_id="p", user_id="u",
        image_ref="i", flavor={}, vm_state="active", task_state=None, power_state=1,
        host="h1", node="h1", availability_zone=None,
        network_info=[{"id": "vif"}]).to_dict()
    try:
        for level in (None, "1.0"):
            await compute_rpcapi.ComputeAPI(bus, capped(level)).terminate_instance(
                RequestContext(), "h1", instance)
        await asyncio.sleep(0.1)
    finally:
        await bus.close()
    assert [(i["_version"], "network_info" in i) for i in seen] == [
        ("1.2", True), ("1.1", False)]


async def test_the_api_honours_upgrade_levels(tmp_path: Any) -> None:
    """Finding: only the compute and conductor managers read [upgrade_levels], so
    the API process sent compute 1.1 messages to 1.0 hosts during an upgrade."""
    from novalet.service.api import ApiServices

    conf = capped("1.0")
    conf.set("DEFAULT", "state_path", str(tmp_path))
    bus = InProcessBus(default_timeout=5)
    old = OldCompute()
    await bus.serve("compute.h1", old)
    services = ApiServices(conf, bus=bus)
    try:
        for rpc in (services.compute.compute, services.consoles.compute):
            await rpc.external_instance_event(RequestContext(), "h1", [EVENT])
        await asyncio.sleep(0.1)
        assert [e["_version"] for e in old.events] == ["1.0", "1.0"]
    finally:
        await bus.close()
        await services.db.close()


async def test_inventories_as_lists_from_old_hosts_and_as_models_from_current(
        served: Served) -> None:
    # conductor RPC 1.0/1.1: [total, reserved, allocation_ratio]
    await old_call(served, "update_provider", {
        "uuid": "rp-h1", "name": "h1", "host": "h1", "availability_zone": "nova",
        "inventories": {"VCPU": [4, 0, 16.0], "MEMORY_MB": [2048, 512, 1.5]}})
    assert await inventories_of(served, "rp-h1") == {"VCPU": (4, 0, 16.0),
                                                     "MEMORY_MB": (2048, 512, 1.5)}
    # 1.2: Inventory models
    api = ConductorAPI(served.bus.as_user("compute-h1"), config.Config())
    await api.update_provider(RequestContext.admin(), "rp-h1", "h1", "h1", "nova",
                              {"VCPU": Inventory(8, 1, 4.0)})
    assert await inventories_of(served, "rp-h1") == {"VCPU": (8, 1, 4.0)}
    # nonsense is refused, in either form
    for bad in ([-1, 0, 1.0], {"total": "many"}, [1, 2]):
        with pytest.raises(Exception, match="Inventory refused"):
            await old_call(served, "update_provider", {
                "uuid": "rp-h1", "name": "h1", "host": "h1", "availability_zone": "nova",
                "inventories": {"VCPU": bad}})


async def test_conductor_cap_sends_inventories_as_lists() -> None:
    bus = InProcessBus(default_timeout=5)
    sent: list[tuple[str, Any]] = []

    class OldConductor:
        RPC_VERSION = "1.1"

        async def update_provider(self, ctx: RequestContext, **args: Any) -> None:
            sent.append((rpc_bus.current_call().version,  # type: ignore[union-attr]
                         args["inventories"]))

    await bus.serve("conductor", OldConductor())
    conf = config.Config()
    conf.set("upgrade_levels", "conductor", "1.1")
    try:
        await ConductorAPI(bus, conf).update_provider(RequestContext.admin(), "rp", "h1", "h1",
                                                "nova", {"VCPU": Inventory(4, 0, 16.0)})
    finally:
        await bus.close()
    assert sent == [("1.0", {"VCPU": [4, 0, 16.0]})]


async def inventories_of(served: Served, uuid: str) -> dict[str, tuple[int, int, float]]:
    async with served.db.transaction() as s:
        rows = (await s.execute(select(models.Inventory).where(
            models.Inventory.provider_uuid == uuid))).scalars().all()
    return {i.resource_class: (i.total, i.reserved, i.allocation_ratio) for i in rows}
