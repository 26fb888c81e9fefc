"""Finding: the conductor served any compute host any tenant's instance. Now a
host's bus user is served only the instances on (or moving to) that host."""

from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute.payloads import Inventory
from novalet.conductor.host_access import HostAccess
from novalet.conductor.rpcapi import ConductorAPI
from novalet.db import instances, migrations_records
from novalet.rpc.bus import UNIDENTIFIED, CallInfo, NotAuthorizedForHost
from tests.unit.conductor.conftest import Served


def as_host(served: Served, host: str) -> ConductorAPI:
    return ConductorAPI(served.bus.as_user(f"compute-{host}"))


async def test_compute_host_cannot_touch_another_hosts_instance(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    h1 = as_host(served, "h1")
    ctx = RequestContext.admin()
    await h1.instance_update(ctx, "inst-1", {"task_state": "spawning"})
    with pytest.raises(NotAuthorizedForHost) as err:
        await h1.instance_update(ctx, "inst-2", {"task_state": "deleting"})
    assert err.value.code == 403
    assert (await instances.get(served.db, "inst-2")).task_state is None
    for call in (h1.event_start(ctx, "inst-2", "e", "h1"), h1.add_fault(ctx, "inst-2", 500,
                 "m", "d", "h1"), h1.instance_destroy(ctx, "inst-2"),
                 h1.remove_allocations(ctx, "inst-2"),
                 h1.migration_update(ctx, "inst-2", "error")):
        with pytest.raises(NotAuthorizedForHost):
            await call
    assert "Refused instance_update on instance inst-2 from bus user compute-h1" in caplog.text


async def test_compute_host_cannot_list_or_report_for_another_host(served: Served) -> None:
    h1 = as_host(served, "h1")
    ctx = RequestContext.admin()
    assert [i.uuid for i in await h1.instances_on_host(ctx, "h1")] == ["inst-1"]
    with pytest.raises(NotAuthorizedForHost):
        await h1.instances_on_host(ctx, "h2")
    with pytest.raises(NotAuthorizedForHost):
        await h1.service_heartbeat(ctx, "h2", "nova-compute", "compute.h2")
    with pytest.raises(NotAuthorizedForHost):
        await h1.update_provider(ctx, "rp", "h2", "h2", "nova", {})
    with pytest.raises(NotAuthorizedForHost):
        await h1.instance_usage_audit(ctx, "h2", "2026-01-01T00:00:00",
                                      "2026-02-01T00:00:00")


async def test_compute_host_cannot_use_service_only_methods(served: Served) -> None:
    h1 = as_host(served, "h1")
    with pytest.raises(NotAuthorizedForHost):
        await h1.console_check_token(RequestContext.admin(), "some-token")


async def test_host_cannot_move_or_reown_its_own_instance(served: Served) -> None:
    h1 = as_host(served, "h1")
    for values in ({"host": "h2"}, {"project_id": "p2"}, {"node": "x"}):
        with pytest.raises(NotAuthorizedForHost):
            await h1.instance_update(RequestContext.admin(), "inst-1", values)


async def test_destination_of_a_move_is_served(served: Served) -> None:
    h1 = as_host(served, "h1")
    ctx = RequestContext.admin()
    await migrations_records.create(served.db, {
        "instance_uuid": "inst-2", "source_compute": "h2", "dest_compute": "h1",
        "status": "migrating", "migration_type": "migration"})
    await h1.instance_update(ctx, "inst-2", {"task_state": "resize_migrating"})
    await migrations_records.set_status(served.db, "inst-2", "confirmed")
    with pytest.raises(NotAuthorizedForHost):
        await h1.instance_update(ctx, "inst-2", {"task_state": None})


async def test_services_and_in_process_callers_are_trusted(served: Served) -> None:
    ctx = RequestContext.admin()
    # The API's and scheduler's user over RabbitMQ, and no identity in-process.
    for conductor in (ConductorAPI(served.bus.as_user("novalet")), ConductorAPI(served.bus)):
        await conductor.instance_update(ctx, "inst-2", {"task_state": None})
        assert len(await conductor.instances_on_host(ctx, "h2")) == 1


def call(method: str, sender: str | None) -> CallInfo:
    return CallInfo(topic="conductor", method=method, version="1.1", sender=sender)


async def test_unidentified_broker_messages_refused_unless_trusted(served: Served) -> None:
    conf = config.Config()
    strict = HostAccess(conf, served.db)
    args: dict[str, Any] = {"host": "h1"}
    with pytest.raises(NotAuthorizedForHost):
        await strict.check(RequestContext(), call("instances_on_host", UNIDENTIFIED), args)
    conf.set("conductor", "trust_unidentified_senders", "true")
    await HostAccess(conf, served.db).check(RequestContext(),
                                            call("instances_on_host", UNIDENTIFIED), args)


async def test_host_users_option_maps_other_names(served: Served) -> None:
    conf = config.Config()
    conf.set("conductor", "host_users", "rack7-node3:h1, other:h2")
    access = HostAccess(conf, served.db)
    assert access.host_of("rack7-node3") == "h1"
    assert access.host_of("compute-h9") == "h9"
    assert access.host_of("novalet") is None
    await access.check(RequestContext(), call("instance_update", "rack7-node3"),
                       {"uuid": "inst-1", "values": {}})
    with pytest.raises(NotAuthorizedForHost):
        await access.check(RequestContext(), call("instance_update", "rack7-node3"),
                           {"uuid": "inst-2", "values": {}})
    with pytest.raises(NotAuthorizedForHost):
        await access.check(RequestContext(), call("compute_node_update", "other"),
                           {"node": {"host": "h1"}})


async def test_compute_host_refuses_requests_from_other_hosts_users(tmp_path: Any) -> None:
    from novalet.compute.manager import ComputeManager
    from novalet.rpc.inprocess import InProcessBus
    from novalet.virt.fake import FakeDriver

    conf = config.Config()
    conf.set("DEFAULT", "host", "h2")
    conf.set("DEFAULT", "state_path", str(tmp_path))
    bus = InProcessBus(default_timeout=5)
    manager = ComputeManager(conf, bus, FakeDriver(conf), None, None)  # type: ignore[arg-type]
    await bus.serve("compute.h2", manager)
    try:
        with pytest.raises(NotAuthorizedForHost):  # another host publishing here
            await bus.as_user("compute-h1").call(RequestContext.admin(), "compute.h2",
                                                 "get_host_uptime")
        with pytest.raises(NotAuthorizedForHost):  # a broker message without user-id
            await manager._authorize(RequestContext(), call("get_host_uptime", UNIDENTIFIED),
                                     {})
        # The API and conductor (their service user, or in-process) are served.
        await manager._authorize(RequestContext(), call("get_host_uptime", "novalet"), {})
        assert isinstance(await bus.call(RequestContext.admin(), "compute.h2",
                                         "get_host_uptime"), str)
    finally:
        await bus.close()


async def test_host_cannot_overwrite_another_hosts_provider_or_node(served: Served) -> None:
    from novalet.compute.payloads import ComputeNodePayload
    ctx = RequestContext.admin()
    h1, h2 = as_host(served, "h1"), as_host(served, "h2")
    await h2.update_provider(ctx, "rp-h2", "h2", "h2", "nova", {"VCPU": Inventory(4)})
    await h2.compute_node_update(ctx, ComputeNodePayload(
        uuid="rp-h2", host="h2", hypervisor_hostname="h2", hypervisor_type="fake"))
    with pytest.raises(NotAuthorizedForHost):  # h2's provider, claimed for h1
        await h1.update_provider(ctx, "rp-h2", "h2", "h1", "nova", {"VCPU": Inventory(0)})
    for node in (ComputeNodePayload(uuid="rp-h2", host="h1", hypervisor_hostname="x",
                                    hypervisor_type="fake"),
                 ComputeNodePayload(uuid="rp-x", host="h1", hypervisor_hostname="h2",
                                    hypervisor_type="fake")):
        with pytest.raises(NotAuthorizedForHost):
            await h1.compute_node_update(ctx, node)
    await h1.update_provider(ctx, "rp-h1", "h1", "h1", "nova", {"VCPU": Inventory(4)})
    await h1.update_provider(ctx, "rp-h1", "h1", "h1", "nova", {"VCPU": Inventory(8)})
