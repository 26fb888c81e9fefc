"""Steps.beside: a step's instance-action event written beside the step (the
live migration's records off its critical path), never instead of it."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from novalet.common.context import RequestContext
from novalet.conductor.tasks.base import Steps
from novalet.db import instance_actions
from novalet.db.models import InstanceActionEvent
from novalet.rpc.bus import MessagingTimeout
from tests.unit.conductor.conftest import Served


async def _events(served: Served) -> list[InstanceActionEvent]:
    async with served.db.transaction() as s:
        return list((await s.execute(select(InstanceActionEvent))).scalars())


@pytest.fixture
async def steps(served: Served) -> Steps:
    ctx = RequestContext.admin()
    await instance_actions.start(served.db, ctx, ["inst-1"], "live-migration")
    return Steps(served.db, ctx, "inst-1")


async def test_the_step_runs_while_its_event_opens_and_settle_closes_it(
        served: Served, steps: Steps) -> None:
    ran = asyncio.Event()

    async def work() -> str:
        ran.set()
        return "target"

    assert await steps.beside("compute_pre_live_migration", "h2", work()) == "target"
    assert ran.is_set()
    await steps.settle()
    [event] = await _events(served)
    assert (event.event, event.host, event.result) == ("compute_pre_live_migration", "h2",
                                                       "Success")
    assert event.finish_time is not None and not steps.closing


async def test_a_failed_step_closes_its_event_with_error_before_the_failure_goes_on(
        served: Served, steps: Steps) -> None:
    async def work() -> None:
        raise RuntimeError("destination refused")

    with pytest.raises(RuntimeError, match="destination refused"):
        await steps.beside("compute_check_can_live_migrate_destination", "h2", work())
    [event] = await _events(served)
    assert event.result == "Error" and "destination refused" in (event.traceback or "")
    action = await instance_actions.get(served.db, "inst-1", steps.ctx.request_id)
    assert action.message == "Error"


async def test_an_event_that_cannot_be_written_does_not_undo_a_step_done(
        served: Served, steps: Steps, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("database gone")

    monkeypatch.setattr(instance_actions, "event_start", broken)

    async def work() -> str:
        return "handed over"

    assert await steps.beside("compute_live_migration", "h1", work()) == "handed over"
    await steps.settle()
    assert "compute_live_migration of inst-1 was not recorded: database gone" in caplog.text


async def test_a_failed_step_keeps_its_exception_when_its_error_closing_fails(
        served: Served, steps: Steps, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("database gone")

    monkeypatch.setattr(instance_actions, "event_finish", broken)

    async def work() -> None:
        raise RuntimeError("destination refused")

    with pytest.raises(RuntimeError, match="destination refused"):
        await steps.beside("compute_pre_live_migration", "h2", work())
    assert "compute_pre_live_migration's closing of inst-1 was not recorded: database gone" \
        in caplog.text
    [event] = await _events(served)
    assert event.finish_time is None  # opened; its closing is what was lost


async def test_a_step_around_which_its_error_closing_fails_keeps_its_exception(
        served: Served, steps: Steps, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Steps.event likewise: a task that tells a timed-out step from a failed one
    still sees the step's exception."""
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("database gone")

    monkeypatch.setattr(instance_actions, "event_finish", broken)
    with pytest.raises(MessagingTimeout):
        async with steps.event("compute_resize_instance", "h1"):
            raise MessagingTimeout(timeout=60, method="resize_instance", topic="compute.h1",
                                   caller="conductor")
    assert "compute_resize_instance's closing of inst-1 was not recorded: database gone" \
        in caplog.text
