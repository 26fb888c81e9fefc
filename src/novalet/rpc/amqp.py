"""The AMQP bus: the same call/cast/fanout as the in-process bus, over RabbitMQ.

Topology (one vhost per cloud):
- a durable queue per topic (`conductor`, `scheduler`, `compute.<host>` …);
  every server of a topic consumes it, so a shared topic is a work queue.
  Requests are published to the default exchange, which routes by queue name,
  so a server need not bind anything: a compute host's own bus user
  (`compute-<host>`, docs/multi-host.md) needs no read right on a shared
  exchange, through which it could bind its queue to another host's messages.
  Services other than compute hosts also bind their topic queues to the direct
  exchange `novalet` by name, which is where the release before this one
  published.
- exchange `novalet.fanout.<topic>` (fanout): each server binds a queue of
  its own that lives as long as its connection.
- a reply queue per process, `reply.<bus user>.<random>` (durable, expiring a
  while after its process is gone), so replies published around a broker
  restart still arrive, and a user's read right can be limited to its own.

Delivery: every request and reply is persistent and published with publisher
confirms; a publish that meets a lost connection waits for the reconnection
and tries again until its deadline. Calls are acknowledged on receipt and
expire with the caller's timeout (nobody runs a request its caller gave up
on). Casts are acknowledged after they ran, so a server killed mid-cast hands
it to the next server of the topic: cast handlers must tolerate a second
delivery. A handler marked `bus.ack_on_receipt` is the exception: its cast is
acknowledged when taken, because it waits for other messages of its topic that
the `prefetch` deliveries held unacknowledged would keep from it (a compute
host's builds wait for network-vif-plugged on its own queue). Reconnection
uses a randomised, growing back-off, so a whole cloud does not hammer a broker
that is coming back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import random
import time
import uuid as uuidlib
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika import DeliveryMode, ExchangeType
from aio_pika.abc import (AbstractChannel, AbstractExchange, AbstractIncomingMessage,
                          AbstractRobustConnection)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, PublishError

from novalet.common.context import RequestContext
from novalet.common.timeutils import utcnow
from novalet.common.urls import without_password
from novalet.rpc import bus

LOG = logging.getLogger(__name__)
EXCHANGE = "novalet"
_REPLY_QUEUE_EXPIRES_MS = 10 * 60 * 1000


class JitteredRobustConnection(aio_pika.RobustConnection):
    """aio-pika's self-healing connection, waiting a random time between attempts
    that grows with the outage (a quarter of it, 0.5 s to 30 s, times 0.5–1.5)
    instead of a fixed interval. aio-pika reads the interval for its log lines
    too, so it depends on time, not on how often it was read."""

    _BASE, _CAP = 0.5, 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lost_at: float | None = None
        super().__init__(*args, **kwargs)

    @property
    def reconnect_interval(self) -> float:
        outage = time.monotonic() - self._lost_at if self._lost_at is not None else 0.0
        return min(self._CAP, max(self._BASE, outage / 4)) * random.uniform(0.5, 1.5)

    @reconnect_interval.setter
    def reconnect_interval(self, _value: float) -> None:
        pass  # the back-off above replaces the fixed interval

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if self._lost_at is None:
            self._lost_at = time.monotonic()
        await super()._on_connection_close(closing)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self._lost_at = None


class AmqpBus(bus.Bus):
    def __init__(self, url: str, default_timeout: float = 60.0, *, prefetch: int = 100,
                 heartbeat: int = 60, name: str = "novalet",
                 senders: bus.Senders | None = None) -> None:
        self.url = url.replace("rabbit://", "amqp://", 1)
        # Every message carries this as its AMQP user-id; RabbitMQ refuses a
        # publish whose user-id is not the connection's user, so receivers can
        # trust it (conductor/host_access.py).
        self.user = unquote(urlsplit(self.url).username or "") or "guest"
        self.senders = senders or bus.Senders()
        # A compute host's user (by the same rule as the receivers', [conductor]
        # host_users included) has rights on its own queues only (see above).
        self._legacy_bindings = self.senders.host_of(self.user) is None
        self.default_timeout = default_timeout
        self.prefetch = prefetch
        self.heartbeat = heartbeat
        self.name = f"{name}:{os.getpid()}"
        self._conn: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._connect_lock = asyncio.Lock()
        self._reply_queue = f"reply.{self.user}.{uuidlib.uuid4().hex}"
        self._replies: dict[str, asyncio.Future[bytes]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- connection ----------------------------------------------------------

    async def _ready(self) -> AbstractExchange:
        if self._exchange is None:
            async with self._connect_lock:
                if self._exchange is None:
                    await self._connect()
        assert self._exchange is not None
        return self._exchange

    async def _connect(self) -> None:
        try:
            self._conn = await aio_pika.connect_robust(
                self.url, connection_class=JitteredRobustConnection,
                heartbeat=self.heartbeat, client_properties={"connection_name": self.name})
        except CONNECTION_EXCEPTIONS as exc:
            raise bus.BusUnavailable(url=without_password(self.url), reason=str(exc)) from None
        self._publisher = await self._conn.channel(publisher_confirms=True,
                                                   on_return_raises=True)
        if self._legacy_bindings:
            await self._publisher.declare_exchange(EXCHANGE, ExchangeType.DIRECT,
                                                   durable=True)
        self._exchange = self._publisher.default_exchange
        replies = await self._conn.channel()
        queue = await replies.declare_queue(
            self._reply_queue, durable=True,
            arguments={"x-expires": _REPLY_QUEUE_EXPIRES_MS})
        await queue.consume(self._on_reply, no_ack=True)
        self._conn.reconnect_callbacks.add(self._on_reconnect)
        self._conn.close_callbacks.add(self._on_disconnect)
        self.connected_since = utcnow()
        LOG.info("Connected to the message bus at %s", without_password(self.url))

    def _on_disconnect(self, *_: Any) -> None:
        self.connected_since = dt.datetime.max  # not listening now
        LOG.warning("Lost the message bus at %s; reconnecting", without_password(self.url))

    def _on_reconnect(self, *_: Any) -> None:
        self.connected_since = utcnow()
        LOG.info("Reconnected to the message bus at %s", without_password(self.url))

    async def _publish(self, message: aio_pika.Message, routing_key: str, deadline: float,
                       exchange: AbstractExchange | None = None) -> None:
        """Publish with a broker confirm; across a lost connection, wait and retry
        until `deadline` (time.monotonic())."""
        delay = 0.1
        while True:
            target = exchange or await self._ready()
            try:
                await target.publish(message, routing_key, timeout=max(1.0, deadline -
                                                                       time.monotonic()))
                return
            except PublishError:
                raise
            except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
                if time.monotonic() + delay > deadline:
                    raise bus.BusUnavailable(url=without_password(self.url), reason=str(exc)) from None
                LOG.warning("Publishing to %s failed (%s); retrying", routing_key, exc)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 5.0)

    async def _declare_topic(self, topic: str, channel: AbstractChannel | None = None
                             ) -> aio_pika.abc.AbstractQueue:
        await self._ready()
        chan = channel or self._publisher
        assert chan is not None
        queue = await chan.declare_queue(topic, durable=True)
        if self._legacy_bindings:
            await queue.bind(EXCHANGE, routing_key=topic)
        return queue

    # --- the Bus interface -------------------------------------------------------

    async def call(self, ctx: RequestContext, topic: str, method: str,
                   args: dict[str, Any] | None = None, *, version: str = "1.0",
                   timeout: float | None = None) -> Any:
        timeout = timeout or self.default_timeout
        deadline = time.monotonic() + timeout
        await self._ready()
        correlation = uuidlib.uuid4().hex
        reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._replies[correlation] = reply
        message = aio_pika.Message(
            bus.make_message(ctx, method, version, args), correlation_id=correlation,
            reply_to=self._reply_queue, delivery_mode=DeliveryMode.PERSISTENT,
            expiration=timeout, content_type="application/json", user_id=self.user)
        try:
            try:
                await self._publish(message, topic, deadline)
            except PublishError:
                raise bus.MessagingTimeout(timeout=0, method=method, topic=topic,
                                           caller=f"{bus.caller()}: no server ever "
                                           f"listened on {topic}") from None
            raw = await asyncio.wait_for(reply, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise bus.MessagingTimeout(timeout=timeout, method=method, topic=topic,
                                       caller=bus.caller()) from None
        finally:
            self._replies.pop(correlation, None)
        return bus.raise_from_reply(bus.decode(raw))

    async def cast(self, ctx: RequestContext, topic: str, method: str,
                   args: dict[str, Any] | None = None, *, version: str = "1.0") -> None:
        message = aio_pika.Message(bus.make_message(ctx, method, version, args),
                                   delivery_mode=DeliveryMode.PERSISTENT,
                                   content_type="application/json", user_id=self.user)
        deadline = time.monotonic() + self.default_timeout
        try:
            await self._publish(message, topic, deadline)
        except PublishError:
            # No server has listened on this topic yet: keep the message for the first.
            await self._declare_topic(topic)
            await self._publish(message, topic, deadline)

    async def fanout(self, ctx: RequestContext, topic: str, method: str,
                     args: dict[str, Any] | None = None, *, version: str = "1.0") -> None:
        await self._ready()
        assert self._publisher is not None
        exchange = await self._publisher.declare_exchange(
            f"{EXCHANGE}.fanout.{topic}", ExchangeType.FANOUT, durable=True)
        message = aio_pika.Message(bus.make_message(ctx, method, version, args),
                                   content_type="application/json", user_id=self.user)
        try:
            await self._publish(message, "", time.monotonic() + self.default_timeout,
                                exchange=exchange)
        except PublishError:
            LOG.debug("fanout %s on %s reached no server", method, topic)

    async def serve(self, topic: str, endpoint: Any) -> None:
        await self._ready()
        assert self._conn is not None
        channel = await self._conn.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await self._declare_topic(topic, channel)
        await queue.consume(functools.partial(self._on_request, topic, endpoint))
        fanout = await channel.declare_exchange(f"{EXCHANGE}.fanout.{topic}",
                                                ExchangeType.FANOUT, durable=True)
        mine = await channel.declare_queue(f"{topic}.fanout.{uuidlib.uuid4().hex}",
                                           exclusive=True, auto_delete=True)
        await mine.bind(fanout)
        await mine.consume(functools.partial(self._on_request, topic, endpoint))
        LOG.info("Serving topic %s", topic)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()
        self._conn = self._exchange = self._publisher = None

    # --- delivery -------------------------------------------------------------

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        waiter = self._replies.get(message.correlation_id or "")
        if waiter is not None and not waiter.done():
            waiter.set_result(message.body)

    async def _on_request(self, topic: str, endpoint: Any,
                          message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._handle(topic, endpoint, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, topic: str, endpoint: Any,
                      message: AbstractIncomingMessage) -> None:
        # A call: its caller times out if we die; never run it twice. A cast marked
        # bus.ack_on_receipt: it must not hold one of the prefetch's deliveries.
        early = bool(message.reply_to) or bus.acks_on_receipt(endpoint, message.body)
        if early:
            await _settle(message)
        # The broker checked user-id against the publisher's connection; none at
        # all is a publisher that chose not to say.
        sender = message.user_id or bus.UNIDENTIFIED
        result = await bus.dispatch(endpoint, topic, message.body, sender, self.senders)
        if message.reply_to:
            await self._reply(message, result)
            return
        if "error" in result:
            LOG.warning("cast to %s failed: %s", topic, result["error"]["message"])
        if not early:
            await _settle(message)

    async def _reply(self, request: AbstractIncomingMessage, result: dict[str, Any]) -> None:
        reply = aio_pika.Message(bus.encode(result), correlation_id=request.correlation_id,
                                 delivery_mode=DeliveryMode.PERSISTENT, user_id=self.user)
        assert self._publisher is not None and request.reply_to
        try:
            await self._publish(reply, request.reply_to,
                                time.monotonic() + self.default_timeout,
                                exchange=self._publisher.default_exchange)
        except (PublishError, bus.BusUnavailable) as exc:
            LOG.warning("Reply to %s lost: %s", request.reply_to, exc)


async def _settle(message: AbstractIncomingMessage) -> None:
    """Acknowledge; on a channel lost since delivery the broker redelivers instead."""
    try:
        await message.ack()
    except CONNECTION_EXCEPTIONS as exc:
        LOG.info("Could not acknowledge a message (%s); it will be delivered again", exc)

