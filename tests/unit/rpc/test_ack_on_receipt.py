"""Casts marked bus.ack_on_receipt are acknowledged when taken, others once they
ran (rpc/amqp.py): a handler waiting for more messages of its own topic must not
hold a delivery of the consumer's prefetch (a build waiting for
network-vif-plugged on its host's queue)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from novalet.common.context import RequestContext
from novalet.compute.manager import ComputeManager
from novalet.rpc import bus
from novalet.rpc.amqp import AmqpBus


class Endpoint:
    RPC_VERSION = "1.0"

    def __init__(self) -> None:
        self.log: list[str] = []
        self.release = asyncio.Event()

    @bus.ack_on_receipt
    async def waits(self, ctx: RequestContext) -> None:
        self.log.append("waits runs")
        await self.release.wait()
        self.log.append("waits ran")

    async def plain(self, ctx: RequestContext) -> None:
        self.log.append("plain ran")


@dataclass
class Message:
    """What AmqpBus._handle reads of an incoming message."""

    body: bytes
    log: list[str]
    reply_to: str | None = None
    user_id: str | None = "novalet"  # a service of the cloud, not a compute host

    async def ack(self) -> None:
        self.log.append("ack")


def message(method: str, log: list[str]) -> Message:
    return Message(bus.make_message(RequestContext.admin(), method, "1.0", {}), log)


def test_only_marked_handlers_ack_on_receipt() -> None:
    endpoint = Endpoint()
    assert bus.acks_on_receipt(endpoint, message("waits", []).body)
    assert not bus.acks_on_receipt(endpoint, message("plain", []).body)
    assert not bus.acks_on_receipt(endpoint, message("missing", []).body)
    assert not bus.acks_on_receipt(endpoint, b"not json")
    assert not bus.acks_on_receipt(endpoint, b"[1]")
    build = message("build_and_run_instance", []).body
    assert bus.acks_on_receipt(ComputeManager, build)
    assert not bus.acks_on_receipt(ComputeManager, message("terminate_instance", []).body)


async def test_a_marked_cast_is_acknowledged_before_it_runs() -> None:
    amqp, endpoint = AmqpBus("amqp://guest:guest@127.0.0.1:1/none"), Endpoint()
    handling = asyncio.create_task(
        amqp._handle("t", endpoint, message("waits", endpoint.log)))  # type: ignore[arg-type]
    for _ in range(100):
        if "waits runs" in endpoint.log or handling.done():
            break
        await asyncio.sleep(0.01)
    assert endpoint.log == ["ack", "waits runs"]  # taken: the delivery is not held
    endpoint.release.set()
    await handling
    assert endpoint.log == ["ack", "waits runs", "waits ran"]  # acknowledged once


async def test_other_casts_are_acknowledged_after_they_ran() -> None:
    amqp, endpoint = AmqpBus("amqp://guest:guest@127.0.0.1:1/none"), Endpoint()
    await amqp._handle("t", endpoint, message("plain", endpoint.log))  # type: ignore[arg-type]
    assert endpoint.log == ["plain ran", "ack"]
