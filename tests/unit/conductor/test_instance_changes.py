"""Issue 14, item 5: instance_update and record_power_change took any dict of
values and wrote it to the instance row. Now the values are an InstanceChanges
model (compute/instance_changes.py): only the fields a compute host sets, each
of its type, are taken; anything else is refused with 400 before the database
is touched."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.instance_changes import InstanceChanges, InvalidInstanceChange
from novalet.compute.states import PowerState, TaskState, VmState
from novalet.conductor.rpcapi import ConductorAPI
from novalet.db import instances
from tests.unit.conductor.conftest import FLAVOR, Served


@pytest.mark.parametrize("values, message", [
    ({"display_name": "x"}, "may not set display_name"),
    ({"locked": True, "vm_state": "active"}, "may not set locked"),
    ({"given": ["host"]}, "may not set given"),
    ({"vm_state": "flying"}, "vm_state"),
    ({"vm_state": None}, "vm_state may not be null"),
    ({"task_state": "nonsense"}, "task_state"),
    ({"power_state": "1"}, "power_state"),
    ({"power_state": 99}, "power_state"),
    ({"power_state": True}, "power_state"),
    ({"launched_at": "yesterday"}, "launched_at"),
    ({"launched_at": 1700000000}, "launched_at"),
    ({"flavor": "m1.huge"}, "flavor"),
    ({"flavor": None}, "flavor may not be null"),
    ({"flavor": {**FLAVOR, "vcpus": "2"}}, "vcpus"),
    ({"flavor": {**FLAVOR, "extra_specs": {"hw:cpu": 2}}}, "extra_specs"),
    ({"flavor": {k: v for k, v in FLAVOR.items() if k != "memory_mb"}}, "missing memory_mb"),
])
async def test_instance_update_refuses_what_the_model_does_not_take(
        served: Served, values: dict[str, Any], message: str) -> None:
    api = ConductorAPI(served.bus, config.Config())  # even the cloud's own services
    with pytest.raises(InvalidInstanceChange, match=message) as err:
        await api.instance_update(RequestContext.admin(), "inst-1", values)
    assert err.value.code == 400
    with pytest.raises(InvalidInstanceChange):
        await api.record_power_change(RequestContext.admin(), "inst-1", "stop",
                                      "compute_sync_power_state", values, [None])
    assert (await instances.get(served.db, "inst-1")).vm_state == "active"


@pytest.mark.parametrize("values", [
    {"display_name": "x"}, {"vm_state": "flying"}, {"flavor": {"vcpus": 1}}, ["vm_state"]])
async def test_the_conductor_checks_what_reaches_it_untyped(
        served: Served, values: Any) -> None:
    """A sender that skips ConductorAPI (a previous release's host, or a hostile
    one) meets the same checks at the conductor."""
    with pytest.raises(InvalidInstanceChange):
        await served.bus.call(RequestContext.admin(), "conductor", "instance_update", {
            "uuid": "inst-1", "values": values, "expected_task_state": "_unset"},
            version="1.3")
    assert (await instances.get(served.db, "inst-1")).vm_state == "active"


async def test_what_hosts_set_is_taken(served: Served) -> None:
    api = ConductorAPI(served.bus.as_user("compute-h1"), config.Config())
    await api.instance_update(RequestContext.admin(), "inst-1", {
        "vm_state": "stopped", "task_state": None, "power_state": 4,
        "launched_at": "2026-01-01T00:00:00+00:00"})
    inst = await instances.get(served.db, "inst-1")
    assert (inst.vm_state, inst.power_state) == ("stopped", 4)
    assert inst.launched_at == dt.datetime(2026, 1, 1)
    # the cloud's own services (trusted, not a host) may also set these
    await ConductorAPI(served.bus, config.Config()).instance_update(
        RequestContext.admin(), "inst-1", InstanceChanges.of({
            "terminated_at": None, "flavor": FlavorPayload.from_dict(
                {**FLAVOR, "vcpus": 2})}))
    inst = await instances.get(served.db, "inst-1")
    assert inst.flavor == {**FLAVOR, "vcpus": 2}  # the plain document, untagged


async def test_only_the_given_fields_are_written(served: Served) -> None:
    api = ConductorAPI(served.bus, config.Config())
    await api.instance_update(RequestContext.admin(), "inst-1",
                              {"task_state": TaskState.REBOOTING})
    await api.instance_update(RequestContext.admin(), "inst-1",
                              {"power_state": PowerState.SHUTDOWN})
    inst = await instances.get(served.db, "inst-1")
    assert (inst.vm_state, inst.task_state, inst.power_state) == ("active", "rebooting", 4)
    await api.instance_update(RequestContext.admin(), "inst-1", {"task_state": None})
    assert (await instances.get(served.db, "inst-1")).task_state is None


def test_the_wire_form_is_the_given_fields() -> None:
    changes = InstanceChanges.of({"vm_state": VmState.ACTIVE, "task_state": None,
                                  "launched_at": dt.datetime(2026, 1, 2, 3, 4, 5)})
    data = orjson.loads(orjson.dumps(changes.to_dict()))
    assert data == {"vm_state": "active", "task_state": None,
                    "launched_at": "2026-01-02T03:04:05", "_version": "1.0"}
    assert InstanceChanges.from_dict(data) == changes
    assert changes.to_dict(tagged=False) == {k: v for k, v in data.items()
                                             if k != "_version"}
    assert changes.row_values() == {"vm_state": "active", "task_state": None,
                                    "launched_at": dt.datetime(2026, 1, 2, 3, 4, 5)}


def test_values_must_be_an_object() -> None:
    with pytest.raises(InvalidInstanceChange, match="must be an object"):
        InstanceChanges.from_dict(["vm_state"])  # type: ignore[arg-type]
