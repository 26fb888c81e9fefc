"""Finding: the conductor served any compute host any tenant's instance. Now a
host's bus user is served only the instances on (or moving to) that host."""

import asyncio
from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute.move_payloads import MoveRequest, ProgressReport
from novalet.compute.payloads import Inventory
from novalet.conductor.rpcapi import ConductorAPI, InstanceNotServed
from novalet.db import instances, migrations_records
from novalet.rpc import bus as rpc_bus
from novalet.rpc.bus import UNIDENTIFIED, NotAuthorizedForHost
from novalet.rpc.identity import Senders
from tests.unit.conductor.conftest import FLAVOR, Served


def as_host(served: Served, host: str) -> ConductorAPI:
    return ConductorAPI(served.bus.as_user(f"compute-{host}"), config.Config())


async def raw_update(served: Served, host: str, uuid: str, values: dict[str, Any],
                     method: str = "instance_update") -> None:
    """instance_update (or record_power_change) from `host`'s bus user as a host
    skipping ConductorAPI's own checks would send it (values an untyped dict)."""
    args: dict[str, Any] = {"uuid": uuid, "values": values, "expected_task_state": [None]}
    if method == "record_power_change":
        args.update(action="stop", event="e")
    await served.bus.as_user(f"compute-{host}").call(
        RequestContext.admin(), "conductor", method, args, version="1.3")


async def send(served: Served, method: str, args: dict[str, Any], sender: str | None,
               senders: Senders) -> dict[str, Any]:
    """One message to the conductor as the bus would deliver it from `sender`."""
    return await rpc_bus.dispatch(served.conductor, "conductor", rpc_bus.make_message(
        RequestContext.admin(), method, "1.1", args), sender, senders)


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
    for values in ({"host": "h2"}, {"project_id": "p2"}, {"node": "x"}):
        with pytest.raises(NotAuthorizedForHost):
            await raw_update(served, "h1", "inst-1", values)


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
    for conductor in (ConductorAPI(served.bus.as_user("novalet"), config.Config()),
                      ConductorAPI(served.bus, config.Config())):
        await conductor.instance_update(ctx, "inst-2", {"task_state": None})
        assert len(await conductor.instances_on_host(ctx, "h2")) == 1


async def test_unidentified_broker_messages_refused_unless_trusted(served: Served) -> None:
    args: dict[str, Any] = {"host": "h1"}
    reply = await send(served, "instances_on_host", args, UNIDENTIFIED, Senders())
    assert reply["error"]["class"] == "NotAuthorizedForHost"
    # not even under the name of the host it would be taken for
    reply = await send(served, "instances_on_host", {"host": "(unidentified)"},
                       UNIDENTIFIED, Senders())
    assert reply["error"]["class"] == "NotAuthorizedForHost"
    reply = await send(served, "instances_on_host", args, UNIDENTIFIED,
                       Senders(trust_unidentified=True))
    assert [i["uuid"] for i in reply["result"]] == ["inst-1"]


async def test_host_users_option_maps_other_names(served: Served) -> None:
    senders = Senders({"rack7-node3": "h1", "other": "h2"})
    ok = await send(served, "instance_update", {"uuid": "inst-1", "values": {}},
                    "rack7-node3", senders)
    assert "error" not in ok
    for method, args, sender in (
            ("instance_update", {"uuid": "inst-2", "values": {}}, "rack7-node3"),
            ("compute_node_update", {"node": {"host": "h1"}}, "other")):
        reply = await send(served, method, args, sender, senders)
        assert reply["error"]["code"] == 403


def raise_reply(reply: dict[str, Any]) -> Any:
    return rpc_bus.raise_from_reply(reply)


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
            raise_reply(await rpc_bus.dispatch(manager, "compute.h2", rpc_bus.make_message(
                RequestContext.admin(), "get_host_uptime", "1.0", {}), UNIDENTIFIED))
        # Its own host's user, and the API and conductor (their service user, or
        # in-process) are served.
        for user in ("compute-h2", "novalet"):
            assert isinstance(await bus.as_user(user).call(
                RequestContext.admin(), "compute.h2", "get_host_uptime"), str)
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


async def test_host_may_write_only_its_work_fields(served: Served) -> None:
    """Finding: the deny-list of fields missed `flavor` (quota counts from the
    flavor copy) and `deleted`. Hosts write an allow-list of fields."""
    h1 = as_host(served, "h1")
    ctx = RequestContext.admin()
    for values in ({"flavor": {**FLAVOR, "vcpus": 0}}, {"deleted": 1},
                   {"display_name": "x"}, {"task_state": None, "deleted": 1}):
        with pytest.raises(NotAuthorizedForHost):
            await raw_update(served, "h1", "inst-1", values)
    with pytest.raises(NotAuthorizedForHost):
        await h1.record_power_change(ctx, "inst-1", "stop", "e", {"flavor": FLAVOR}, [None])
    with pytest.raises(NotAuthorizedForHost):  # a field only instance_update takes
        await raw_update(served, "h1", "inst-1", {"task_state": None},
                         "record_power_change")
    row = await instances.get(served.db, "inst-1")
    assert row.flavor["vcpus"] == 1 and not row.deleted
    await h1.instance_update(ctx, "inst-1", {"vm_state": "active", "power_state": 1,
                                             "task_state": None})


async def test_host_may_write_the_flavor_only_while_a_move_is_in_progress(
        served: Served) -> None:
    h1 = as_host(served, "h1")
    ctx = RequestContext.admin()
    bigger = {**FLAVOR, "vcpus": 2, "memory_mb": 128}
    await migrations_records.create(served.db, {
        "instance_uuid": "inst-1", "source_compute": "h1", "dest_compute": "h1",
        "status": "post-migrating", "migration_type": "resize"})
    await h1.instance_update(ctx, "inst-1", {"flavor": bigger, "task_state": None})
    assert (await instances.get(served.db, "inst-1")).flavor["vcpus"] == 2
    await migrations_records.set_status(served.db, "inst-1", "finished")
    with pytest.raises(NotAuthorizedForHost):
        await h1.instance_update(ctx, "inst-1", {"flavor": bigger})


async def test_unknown_and_foreign_instances_get_the_same_refusal(served: Served) -> None:
    """Finding: an unknown uuid was answered 404 before the 403 of another host's, so
    a host could tell which uuids exist."""
    h1 = as_host(served, "h1")
    ctx = RequestContext.admin()
    refusals = []
    for uuid in ("inst-2", "no-such-instance"):
        with pytest.raises(InstanceNotServed) as err:
            await h1.event_start(ctx, uuid, "e", "h1")
        refusals.append((type(err.value), err.value.code))
    assert refusals == [(InstanceNotServed, 403)] * 2


async def test_only_a_moving_host_reports_live_migration_progress(served: Served) -> None:
    ctx = RequestContext.admin()
    record = await migrations_records.create(served.db, {
        "instance_uuid": "inst-2", "source_compute": "h2", "dest_compute": "h3",
        "status": "running", "migration_type": "live-migration"})
    report = ProgressReport(record.uuid, "inst-2", memory_total=100, memory_processed=40,
                            memory_remaining=60)
    with pytest.raises(InstanceNotServed):  # h1 has nothing to do with this move
        await as_host(served, "h1").migration_progress(ctx, report)
    await as_host(served, "h2").migration_progress(ctx, report)
    found = await migrations_records.get(served.db, record.uuid)
    assert found is not None and found.memory_processed == 40
    # ... nor may the source report on another instance's migration
    other = ProgressReport(record.uuid, "inst-1")
    with pytest.raises(InstanceNotServed):
        await as_host(served, "h2").migration_progress(ctx, other)


async def test_hosts_cannot_start_moves(served: Served,
                                        caplog: pytest.LogCaptureFixture) -> None:
    h1 = as_host(served, "h1")
    ctx = RequestContext.admin()
    with pytest.raises(NotAuthorizedForHost):
        await h1.move_server(ctx, MoveRequest("inst-1", "migration"))
    await h1.confirm_move(ctx, "inst-1")  # a cast: refused where it is served
    for _ in range(50):
        if "may not call confirm_move" in caplog.text:
            break
        await asyncio.sleep(0.01)
    assert "Refused confirm_move on conductor from bus user compute-h1" in caplog.text


@pytest.mark.parametrize("kind,dest", [("live-migration", "h2"), ("evacuation", "h2"),
                                       ("migration", "h2"), ("resize", "h2")])
async def test_no_end_of_another_kind_of_move_writes_the_flavor(
        served: Served, kind: str, dest: str) -> None:
    """Only the legacy same-host resize path writes a flavor from a host; neither end
    of a live migration, evacuation, cold migration or cross-host resize may."""
    ctx = RequestContext.admin()
    bigger = {**FLAVOR, "vcpus": 2, "memory_mb": 128}
    await migrations_records.create(served.db, {
        "instance_uuid": "inst-1", "source_compute": "h1", "dest_compute": dest,
        "status": "running" if kind == "live-migration" else "post-migrating",
        "migration_type": kind})
    for host in ("h1", dest):
        with pytest.raises(NotAuthorizedForHost):
            await as_host(served, host).instance_update(ctx, "inst-1", {"flavor": bigger})
    assert (await instances.get(served.db, "inst-1")).flavor["vcpus"] == 1


async def test_the_destination_reports_no_live_migration_progress(served: Served) -> None:
    ctx = RequestContext.admin()
    record = await migrations_records.create(served.db, {
        "instance_uuid": "inst-2", "source_compute": "h2", "dest_compute": "h1",
        "status": "running", "migration_type": "live-migration"})
    with pytest.raises(InstanceNotServed):
        await as_host(served, "h1").migration_progress(ctx, ProgressReport(
            record.uuid, "inst-2", memory_total=100, memory_processed=90))
    found = await migrations_records.get(served.db, record.uuid)
    assert found is not None and not found.memory_processed
