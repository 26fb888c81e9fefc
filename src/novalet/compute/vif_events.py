"""Waiting for events other services report about an instance (Nova's
network-vif-plugged): a build registers what it waits for before it asks for the
work, so an event that arrives before the wait begins is kept, not lost.

The compute manager delivers each external event here (external_instance_event);
one nobody waits for is ignored. A registration is per instance and (name, tag);
the tag of network-vif-plugged is the port (virtual interface) id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

from novalet import exceptions
from novalet.compute.payloads import ExternalEvent

LOG = logging.getLogger(__name__)
VIF_PLUGGED = "network-vif-plugged"


class VirtualInterfaceCreateException(exceptions.NovaletError):
    """Nova's name and message for a port its network service did not plug in time
    (or reported failed); the build fails with it, as a fault on the instance."""

    msg_fmt = "Virtual Interface creation failed: %(reason)s"
    code = 500


class EventsCancelled(exceptions.NovaletError):
    msg_fmt = "Stopped waiting for events of instance %(uuid)s: %(reason)s"


Key = tuple[str, str | None]  # (event name, tag)


class InstanceEvents:
    """The events this compute service's work waits for, per instance."""

    def __init__(self) -> None:
        self._waiting: dict[str, dict[Key, asyncio.Future[ExternalEvent]]] = {}

    def prepare(self, uuid: str, keys: list[Key]) -> EventWaiter:
        """Register a wait for `keys` of instance `uuid`, now (before the work that
        makes them happen); leave the returned waiter's `with` to unregister."""
        loop = asyncio.get_running_loop()
        mine = self._waiting.setdefault(uuid, {})
        futures = {}
        for key in keys:
            mine[key] = futures[key] = loop.create_future()
        return EventWaiter(self, uuid, futures)

    def deliver(self, event: ExternalEvent) -> bool:
        """Hand `event` to whoever waits for it; False when nobody does."""
        future = self._waiting.get(event.server_uuid, {}).get((event.name, event.tag))
        if future is None or future.done():
            return False
        future.set_result(event)
        return True

    def cancel(self, uuid: str, reason: str) -> None:
        """End every wait on instance `uuid` (it is being deleted): they raise
        EventsCancelled."""
        for future in self._waiting.pop(uuid, {}).values():
            if not future.done():
                future.set_exception(EventsCancelled(uuid=uuid, reason=reason))

    def _forget(self, uuid: str, futures: dict[Key, asyncio.Future[ExternalEvent]]) -> None:
        # The futures are settled even when cancel() already dropped the entry:
        # wait() reads results only up to the first exception, and an exception
        # never read is logged ("Future exception was never retrieved").
        mine = self._waiting.get(uuid, {})
        for key, future in futures.items():
            if mine.get(key) is future:
                del mine[key]
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning
        if uuid in self._waiting and not mine:
            del self._waiting[uuid]

    def waiting(self, uuid: str) -> list[Key]:
        """What is waited for on `uuid` (for tests and logs)."""
        return sorted(self._waiting.get(uuid, {}), key=str)


class EventWaiter:
    """The registered wait of one piece of work; a context manager that unregisters."""

    def __init__(self, events: InstanceEvents, uuid: str,
                 futures: dict[Key, asyncio.Future[ExternalEvent]]) -> None:
        self.events = events
        self.uuid = uuid
        self.futures = futures

    def __enter__(self) -> EventWaiter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.events._forget(self.uuid, self.futures)

    async def wait(self, timeout: float) -> list[ExternalEvent]:
        """Every event registered, in order of the keys; VirtualInterfaceCreateException
        naming what did not come within `timeout` seconds, or came with status failed;
        EventsCancelled when the instance's waits were cancelled."""
        started = time.monotonic()
        pending = [f for f in self.futures.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        missing = [tag or name for (name, tag), f in self.futures.items() if not f.done()]
        if missing:
            raise VirtualInterfaceCreateException(reason=(
                f"no {VIF_PLUGGED} event for port {', '.join(missing)} of instance "
                f"{self.uuid} within {timeout:g} seconds ([DEFAULT] vif_plugging_timeout)"))
        got = [f.result() for f in self.futures.values()]  # raises EventsCancelled
        failed = [e.tag or e.name for e in got if e.status == "failed"]
        if failed:
            raise VirtualInterfaceCreateException(reason=(
                f"the network service reported port {', '.join(failed)} of instance "
                f"{self.uuid} failed to plug"))
        LOG.debug("Events %s of %s came in %.3fs", list(self.futures), self.uuid,
                  time.monotonic() - started)
        return got
