"""Shelve, offload, unshelve and evacuate casts start their task and return at once
(a cast is acked only once handled); the conductor's stop() cancels those tasks."""

import asyncio
from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.compute.recreate_requests import EvacuateRequest, UnshelveRequest
from tests.unit.conductor.conftest import Served


@pytest.mark.parametrize("cast", ["shelve", "offload", "unshelve", "evacuate"])
async def test_the_cast_returns_while_its_task_runs_and_stop_cancels_it(
        served: Served, cast: str) -> None:
    conductor = served.conductor
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever(*args: Any) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
    conductor.shelving.shelve = forever  # type: ignore[method-assign]
    conductor.shelving.offload = forever  # type: ignore[method-assign]
    conductor.unshelving.unshelve = forever  # type: ignore[method-assign]
    conductor.evacuating.evacuate = forever  # type: ignore[method-assign]
    ctx = RequestContext.admin()
    handler = {
        "shelve": lambda: conductor.shelve_instance(ctx, "inst-1", "img"),
        "offload": lambda: conductor.shelve_offload_instance(ctx, "inst-1"),
        "unshelve": lambda: conductor.unshelve_instance(
            ctx, UnshelveRequest(instance_uuid="inst-1").to_dict()),
        "evacuate": lambda: conductor.evacuate_instance(ctx, EvacuateRequest(
            instance_uuid="inst-1", migration_uuid="m-1").to_dict()),
    }[cast]
    await asyncio.wait_for(handler(), 1)  # the handler did not wait for the task
    await asyncio.wait_for(started.wait(), 1)
    assert len(conductor.move_tasks.tasks) == 1
    await conductor.stop()
    assert cancelled.is_set() and not conductor.move_tasks.tasks
