"""The plug wait's event registry (compute/vif_events.py): an event that comes
before the wait is kept, a missing one times out naming the port, a delete cancels."""

from __future__ import annotations

import asyncio
import gc

import pytest

from novalet.compute.payloads import ExternalEvent
from novalet.compute.vif_events import (VIF_PLUGGED, EventsCancelled, InstanceEvents,
                                        VirtualInterfaceCreateException)

PORT_A, PORT_B = "aaaa-port", "bbbb-port"


def plugged(port: str, status: str = "completed", uuid: str = "inst-1") -> ExternalEvent:
    return ExternalEvent(VIF_PLUGGED, uuid, port, status)


async def test_an_event_that_comes_before_the_wait_is_kept() -> None:
    events = InstanceEvents()
    with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A), (VIF_PLUGGED, PORT_B)]) as waiter:
        assert events.deliver(plugged(PORT_B))  # before the wait begins
        assert events.deliver(plugged(PORT_A))
        got = await waiter.wait(0.01)
    assert [e.tag for e in got] == [PORT_A, PORT_B]
    assert events.waiting("inst-1") == []


async def test_an_event_during_the_wait_ends_it() -> None:
    events = InstanceEvents()
    with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A)]) as waiter:
        asyncio.get_running_loop().call_later(0.02, events.deliver, plugged(PORT_A))
        started = asyncio.get_running_loop().time()
        await waiter.wait(5)
        assert asyncio.get_running_loop().time() - started < 1


async def test_a_port_never_reported_times_out_naming_the_port_and_the_timeout() -> None:
    events = InstanceEvents()
    with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A), (VIF_PLUGGED, PORT_B)]) as waiter:
        events.deliver(plugged(PORT_A))
        with pytest.raises(VirtualInterfaceCreateException) as raised:
            await waiter.wait(0.05)
    message = str(raised.value)
    assert message.startswith("Virtual Interface creation failed")
    assert PORT_B in message and PORT_A not in message and "0.05 seconds" in message
    assert raised.value.code == 500
    assert events.waiting("inst-1") == []  # the registration went with the `with`


async def test_a_port_reported_failed_fails_the_wait() -> None:
    events = InstanceEvents()
    with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A)]) as waiter:
        events.deliver(plugged(PORT_A, "failed"))
        with pytest.raises(VirtualInterfaceCreateException, match=f"{PORT_A}.*failed"):
            await waiter.wait(1)


async def test_cancelling_the_instance_ends_its_waits() -> None:
    events = InstanceEvents()
    with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A)]) as waiter:
        asyncio.get_running_loop().call_later(0.02, events.cancel, "inst-1", "deleted")
        with pytest.raises(EventsCancelled, match="deleted"):
            await waiter.wait(5)
    assert not events.deliver(plugged(PORT_A))


async def test_events_nobody_waits_for_are_not_taken() -> None:
    events = InstanceEvents()
    assert not events.deliver(plugged(PORT_A))
    with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A)]):
        assert not events.deliver(plugged(PORT_B))  # another port
        assert not events.deliver(plugged(PORT_A, uuid="inst-2"))  # another instance
        assert not events.deliver(ExternalEvent("network-changed", "inst-1", PORT_A))
        assert events.deliver(plugged(PORT_A))
        assert not events.deliver(plugged(PORT_A))  # a second delivery: already had
    assert not events.deliver(plugged(PORT_A))  # after the wait is over


async def test_a_waiter_left_without_waiting_unregisters() -> None:
    events = InstanceEvents()
    with pytest.raises(RuntimeError):
        with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A)]):
            raise RuntimeError("the plug failed")
    assert events.waiting("inst-1") == []
    assert not events.deliver(plugged(PORT_A))


async def test_a_cancelled_wait_leaves_no_exception_unretrieved() -> None:
    # wait() reads results only up to the first EventsCancelled; leaving the wait
    # must read the rest, though cancel() already dropped the instance's entry.
    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    try:
        events = InstanceEvents()
        with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A), (VIF_PLUGGED, PORT_B)]) \
                as waiter:
            futures = list(waiter.futures.values())
            events.cancel("inst-1", "deleted")
            with pytest.raises(EventsCancelled):
                await waiter.wait(5)
        assert events.waiting("inst-1") == []
        del waiter, futures
        gc.collect()
        await asyncio.sleep(0)  # the loop's exception handler is called soon
        assert [c["message"] for c in unretrieved] == []
    finally:
        loop.set_exception_handler(None)


async def test_a_new_wait_after_a_cancel_is_kept_when_the_old_one_leaves() -> None:
    events = InstanceEvents()
    with events.prepare("inst-1", [(VIF_PLUGGED, PORT_A)]) as old:
        events.cancel("inst-1", "deleted")
        with events.prepare("inst-1", [(VIF_PLUGGED, PORT_B)]):
            with pytest.raises(EventsCancelled):
                await old.wait(5)
            old.__exit__(None, None, None)  # the old wait leaves first
            assert events.waiting("inst-1") == [(VIF_PLUGGED, PORT_B)]
            assert events.deliver(plugged(PORT_B))
