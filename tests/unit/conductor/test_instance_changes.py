"""Issue 14, item 5: instance_update and record_power_change took any dict of
values and wrote it to the instance row. Now only the fields a compute host sets
(compute/payloads.INSTANCE_CHANGES), each with a value of its kind, are taken;
anything else is refused with 400 before the database is touched."""

from __future__ import annotations

from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute.payloads import InvalidInstanceChange, check_instance_changes
from novalet.conductor.rpcapi import ConductorAPI
from novalet.db import instances
from tests.unit.conductor.conftest import Served


@pytest.mark.parametrize("values, message", [
    ({"display_name": "x"}, "may not set display_name"),
    ({"locked": True, "vm_state": "active"}, "may not set locked"),
    ({"vm_state": "flying"}, "vm_state"),
    ({"task_state": "nonsense"}, "task_state"),
    ({"power_state": "1"}, "power_state"),
    ({"power_state": 99}, "power_state"),
    ({"launched_at": "yesterday"}, "launched_at"),
    ({"flavor": "m1.huge"}, "flavor"),
])
async def test_instance_update_refuses_fields_hosts_do_not_set(
        served: Served, values: dict[str, Any], message: str) -> None:
    api = ConductorAPI(served.bus, config.Config())  # even the cloud's own services
    with pytest.raises(InvalidInstanceChange, match=message) as err:
        await api.instance_update(RequestContext.admin(), "inst-1", values)
    assert err.value.code == 400
    with pytest.raises(InvalidInstanceChange):
        await api.record_power_change(RequestContext.admin(), "inst-1", "stop",
                                      "compute_sync_power_state", values, [None])
    assert (await instances.get(served.db, "inst-1")).vm_state == "active"


async def test_what_hosts_set_is_taken(served: Served) -> None:
    api = ConductorAPI(served.bus.as_user("compute-h1"), config.Config())
    await api.instance_update(RequestContext.admin(), "inst-1", {
        "vm_state": "stopped", "task_state": None, "power_state": 4,
        "launched_at": "2026-01-01T00:00:00+00:00"})
    inst = await instances.get(served.db, "inst-1")
    assert (inst.vm_state, inst.power_state) == ("stopped", 4)
    # the cloud's own services (trusted, not a host) may also set these
    await ConductorAPI(served.bus, config.Config()).instance_update(
        RequestContext.admin(), "inst-1", {"terminated_at": None, "flavor": {
            "vcpus": 2, "memory_mb": 64, "root_gb": 1, "ephemeral_gb": 0, "swap": 0}})
    assert (await instances.get(served.db, "inst-1")).flavor["vcpus"] == 2


def test_values_must_be_an_object() -> None:
    with pytest.raises(InvalidInstanceChange, match="must be an object"):
        check_instance_changes(["vm_state"])
