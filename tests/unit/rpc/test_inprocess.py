"""The in-process bus keeps the semantics a broker would."""

import asyncio
from typing import Any

import pytest

from novalet import exceptions
from novalet.common.context import RequestContext
from novalet.rpc.bus import MessagingTimeout, NoSuchMethod, RemoteError
from novalet.rpc.inprocess import InProcessBus


class Echo:
    RPC_VERSION = "1.3"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def echo(self, ctx: RequestContext, value: Any) -> Any:
        self.seen.append((ctx.request_id, value))
        return value

    async def not_found(self, ctx: RequestContext) -> None:
        raise exceptions.NotFound("nothing here")

    async def crash(self, ctx: RequestContext) -> None:
        raise ValueError("boom")

    async def slow(self, ctx: RequestContext) -> None:
        await asyncio.sleep(5)


@pytest.fixture
async def bus() -> Any:
    b = InProcessBus(default_timeout=5)
    yield b
    await b.close()


async def test_call_returns_result_and_carries_context(bus: InProcessBus) -> None:
    echo = Echo()
    await bus.serve("t", echo)
    ctx = RequestContext(request_id="req-1")
    assert await bus.call(ctx, "t", "echo", {"value": {"a": [1, 2]}}) == {"a": [1, 2]}
    assert echo.seen == [("req-1", {"a": [1, 2]})]


async def test_novalet_errors_cross_with_their_class_and_code(bus: InProcessBus) -> None:
    await bus.serve("t", Echo())
    with pytest.raises(exceptions.NotFound, match="nothing here") as err:
        await bus.call(RequestContext(), "t", "not_found")
    assert err.value.code == 404


async def test_unexpected_errors_become_remote_errors(bus: InProcessBus) -> None:
    await bus.serve("t", Echo())
    with pytest.raises(RemoteError, match="ValueError: boom"):
        await bus.call(RequestContext(), "t", "crash")


async def test_timeout_names_method_and_topic(bus: InProcessBus) -> None:
    await bus.serve("t", Echo())
    with pytest.raises(MessagingTimeout, match="slow on t"):
        await bus.call(RequestContext(), "t", "slow", timeout=0.05)


async def test_major_version_mismatch_and_private_methods_refused(bus: InProcessBus) -> None:
    await bus.serve("t", Echo())
    with pytest.raises(NoSuchMethod):
        await bus.call(RequestContext(), "t", "echo", {"value": 1}, version="2.0")
    with pytest.raises(NoSuchMethod):
        await bus.call(RequestContext(), "t", "__init__")


async def test_cast_round_robins_and_fanout_reaches_all(bus: InProcessBus) -> None:
    a, b = Echo(), Echo()
    await bus.serve("t", a)
    await bus.serve("t", b)
    for i in range(4):
        await bus.cast(RequestContext(), "t", "echo", {"value": i})
    await bus.fanout(RequestContext(), "t", "echo", {"value": "all"})
    await asyncio.sleep(0.05)
    assert len(a.seen) == 3 and len(b.seen) == 3
    assert ("all" in [v for _, v in a.seen]) and ("all" in [v for _, v in b.seen])


async def test_payloads_must_be_json(bus: InProcessBus) -> None:
    await bus.serve("t", Echo())
    with pytest.raises(TypeError):
        await bus.call(RequestContext(), "t", "echo", {"value": {1, 2}})


async def test_call_to_topic_without_server_fails_fast(bus: InProcessBus) -> None:
    with pytest.raises(MessagingTimeout):
        await bus.call(RequestContext(), "nobody", "echo", {"value": 1})
