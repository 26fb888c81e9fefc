"""The AMQP bus against the real RabbitMQ: the in-process bus's semantics, plus
what a broker brings (queues that outlive servers, restarts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.rpc import bus
from novalet.rpc.amqp import AmqpBus
from tests.multihost.conftest import backing_script, fresh_vhost

pytestmark = pytest.mark.integration


class Endpoint:
    RPC_VERSION = "1.0"

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[int] = []

    async def echo(self, ctx: RequestContext, x: int) -> dict[str, Any]:
        return {"x": x, "by": self.name, "request_id": ctx.request_id}

    async def note(self, ctx: RequestContext, x: int, delay: float = 0) -> None:
        await asyncio.sleep(delay)
        self.seen.append(x)

    async def slow(self, ctx: RequestContext) -> None:
        await asyncio.sleep(10)

    async def fail(self, ctx: RequestContext) -> None:
        raise bus.NoSuchMethod(topic="t", method="fail", version="9")


@pytest.fixture
def url(backing: dict[str, str]) -> Iterator[str]:
    with fresh_vhost(backing) as transport:
        yield transport


async def test_call_cast_fanout_and_errors(url: str) -> None:
    one, two, client = AmqpBus(url, 5), AmqpBus(url, 5), AmqpBus(url, 2)
    a, b = Endpoint("a"), Endpoint("b")
    try:
        await one.serve("work", a)
        await two.serve("work", b)
        ctx = RequestContext.admin()
        replies = [await client.call(ctx, "work", "echo", {"x": i}) for i in range(20)]
        assert [r["x"] for r in replies] == list(range(20))
        assert {r["by"] for r in replies} == {"a", "b"}  # a shared work queue
        assert {r["request_id"] for r in replies} == {ctx.request_id}
        await client.cast(ctx, "work", "note", {"x": 1})
        await client.fanout(ctx, "work", "note", {"x": 2})
        await _until(lambda: sorted(a.seen + b.seen) == [1, 2, 2])
        with pytest.raises(bus.NoSuchMethod):  # a remote error keeps its class
            await client.call(ctx, "work", "fail")
        with pytest.raises(bus.MessagingTimeout, match=r"slow on work .*test_amqp_bus"):
            await client.call(ctx, "work", "slow")
        started = time.monotonic()
        with pytest.raises(bus.MessagingTimeout, match="no server ever listened"):
            await client.call(ctx, "nobody", "echo", {"x": 0})
        assert time.monotonic() - started < 1  # no waiting for a reply that can't come
    finally:
        for b_ in (one, two, client):
            await b_.close()


async def test_a_cast_waits_for_its_first_server(url: str) -> None:
    client, late = AmqpBus(url, 5), AmqpBus(url, 5)
    endpoint = Endpoint("late")
    try:
        await client.cast(RequestContext.admin(), "later", "note", {"x": 7})
        await late.serve("later", endpoint)
        await _until(lambda: endpoint.seen == [7])
    finally:
        await client.close()
        await late.close()


async def test_nothing_accepted_is_lost_across_a_broker_restart(url: str) -> None:
    server, client = AmqpBus(url, 60), AmqpBus(url, 60)
    endpoint = Endpoint("s")
    ctx = RequestContext.admin()
    try:
        await server.serve("durable", endpoint)
        for i in range(20):  # handled slowly: most are queued or in flight at the restart
            await client.cast(ctx, "durable", "note", {"x": i, "delay": 0.5})
        pending = asyncio.create_task(client.call(ctx, "durable", "echo", {"x": 99}))
        await asyncio.to_thread(backing_script, "restart", "rabbitmq")
        for i in range(20, 30):  # published while the clients reconnect
            await client.cast(ctx, "durable", "note", {"x": i})
        assert (await pending)["x"] == 99
        await _until(lambda: set(range(30)) <= set(endpoint.seen), timeout=60)
    finally:
        await server.close()
        await client.close()


async def _until(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.05)


class Waiting:
    """Casts that wait for a later cast of their own topic (as a build waits for
    network-vif-plugged): `held` holds its delivery until it ran, `taken` is
    acknowledged when taken (bus.ack_on_receipt)."""

    RPC_VERSION = "1.0"

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.done: list[str] = []

    async def held(self, ctx: RequestContext) -> None:
        await self.released.wait()
        self.done.append("held")

    @bus.ack_on_receipt
    async def taken(self, ctx: RequestContext) -> None:
        await self.released.wait()
        self.done.append("taken")

    async def release(self, ctx: RequestContext) -> None:
        self.released.set()


@pytest.mark.parametrize("method", ["held", "taken"])
async def test_casts_waiting_for_their_topic_must_not_hold_the_prefetch(
        url: str, method: str) -> None:
    server, client = AmqpBus(url, 5, prefetch=2), AmqpBus(url, 5)
    endpoint = Waiting()
    try:
        await server.serve("waiting", endpoint)
        ctx = RequestContext.admin()
        for _ in range(2):  # as many as the prefetch
            await client.cast(ctx, "waiting", method)
        await client.cast(ctx, "waiting", "release")
        if method == "held":  # acknowledged after they ran: release never comes
            await asyncio.sleep(1)
            assert not endpoint.released.is_set()
            endpoint.released.set()  # (let the test end)
        await _until(lambda: endpoint.done == [method] * 2)
    finally:
        await server.close()
        await client.close()
