"""The in-process bus: asyncio queues per topic, same semantics as a broker.

Messages are encoded to JSON bytes and decoded on delivery, exactly as they
would be on a broker, so nothing works here that would break across hosts.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from typing import Any

from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.rpc import bus

LOG = logging.getLogger(__name__)


class _Server:
    def __init__(self, topic: str, endpoint: Any, senders: bus.Senders) -> None:
        self.topic = topic
        self.endpoint = endpoint
        self.senders = senders
        self.tasks: set[asyncio.Task[Any]] = set()

    def deliver(self, data: bytes, reply: asyncio.Future[bytes] | None,
                sender: str | None) -> None:
        task = asyncio.create_task(self._run(data, reply, sender))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, data: bytes, reply: asyncio.Future[bytes] | None,
                   sender: str | None) -> None:
        result = await bus.dispatch(self.endpoint, self.topic, data, sender, self.senders)
        if reply is not None and not reply.done():
            reply.set_result(bus.encode(result))
        elif reply is None and "error" in result:
            LOG.warning("cast to %s failed: %s", self.topic, result["error"]["message"])


class InProcessBus(bus.Bus):
    """Every service of the process shares one; `as_user` gives a service a view
    whose messages carry its bus identity (the process trusts itself, but the
    receivers' checks of who sent what run as they do across hosts)."""

    def __init__(self, default_timeout: float = 60.0, *,
                 senders: bus.Senders | None = None) -> None:
        self.sender: str | None = None
        self.senders = senders or bus.Senders()
        self.default_timeout = default_timeout
        self.connected_since = utcnow()
        self._servers: dict[str, list[_Server]] = {}
        self._round_robin: dict[str, itertools.count[int]] = {}

    def as_user(self, user: str) -> InProcessBus:
        view = copy.copy(self)  # shares the servers and the round-robin counters
        view.sender = user
        return view

    def _pick(self, topic: str) -> _Server:
        servers = self._servers.get(topic)
        if not servers:
            raise bus.MessagingTimeout(timeout=0, method="(any)", topic=topic,
                                       caller="in-process bus: no server for topic")
        index = next(self._round_robin.setdefault(topic, itertools.count()))
        return servers[index % len(servers)]

    async def call(self, ctx: RequestContext, topic: str, method: str,
                   args: dict[str, Any] | None = None, *, version: str = "1.0",
                   timeout: float | None = None) -> Any:
        timeout = timeout or self.default_timeout
        data = bus.make_message(ctx, method, version, args)
        reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pick(topic).deliver(data, reply, self.sender)
        try:
            raw = await asyncio.wait_for(reply, timeout)
        except TimeoutError:
            raise bus.MessagingTimeout(timeout=timeout, method=method, topic=topic,
                                       caller=bus.caller()) from None
        return bus.raise_from_reply(bus.decode(raw))

    async def cast(self, ctx: RequestContext, topic: str, method: str,
                   args: dict[str, Any] | None = None, *, version: str = "1.0") -> None:
        self._pick(topic).deliver(bus.make_message(ctx, method, version, args), None,
                                 self.sender)

    async def fanout(self, ctx: RequestContext, topic: str, method: str,
                     args: dict[str, Any] | None = None, *, version: str = "1.0") -> None:
        data = bus.make_message(ctx, method, version, args)
        for server in self._servers.get(topic, []):
            server.deliver(data, None, self.sender)

    async def serve(self, topic: str, endpoint: Any) -> None:
        self._servers.setdefault(topic, []).append(_Server(topic, endpoint, self.senders))

    async def close(self) -> None:
        tasks = [t for servers in self._servers.values() for s in servers for t in s.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._servers.clear()

