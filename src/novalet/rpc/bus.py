"""The message bus interface: call (with a timeout), cast and fanout to topics.

A message is a JSON document: the method name, the method's version, the
request context and keyword arguments. Backends (in-process, AMQP) move it;
`dispatch` runs it against an endpoint object on the serving side.
"""

from __future__ import annotations

import abc
import contextvars
import datetime as dt
import importlib
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson

from novalet import exceptions
from novalet.common.context import RequestContext
# re-exported: receivers compare senders with UNIDENTIFIED; buses hold Senders
from novalet.rpc.identity import UNIDENTIFIED as UNIDENTIFIED
from novalet.rpc.identity import Senders as Senders

LOG = logging.getLogger(__name__)


class RemoteError(exceptions.NovaletError):
    msg_fmt = "Remote error: %(reason)s"


class MessagingTimeout(exceptions.NovaletError):
    msg_fmt = ("Timed out after %(timeout)ss waiting for %(method)s on %(topic)s "
               "(called from %(caller)s)")
    code = 504


class BusUnavailable(exceptions.NovaletError):
    msg_fmt = ("The message bus at %(url)s is unreachable (%(reason)s); check that "
               "RabbitMQ runs and [DEFAULT] transport_url is right")
    code = 503


class NoSuchMethod(exceptions.NovaletError):
    msg_fmt = "Endpoint on %(topic)s has no method %(method)s of version %(version)s"


class NotAuthorizedForHost(exceptions.NovaletError):
    msg_fmt = ("Bus user %(sender)s (host %(host)s) may not call %(method)s on "
               "%(target)s")
    code = 403


@dataclass(frozen=True)
class CallInfo:
    """The message a served method is running for: the version the caller sent it
    at (so a reply can be backported for an older caller) and the bus user that
    sent it (the AMQP user-id RabbitMQ checked against the connection's user; on
    the in-process bus the identity the calling service stamped, None for none), and
    the compute host that user is (rpc/identity.Senders, resolved once by the bus:
    None for the cloud's services)."""

    topic: str
    method: str
    version: str
    sender: str | None
    host: str | None = None


_current_call: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar(
    "rpc_call", default=None)


def current_call() -> CallInfo | None:
    """The message the current task serves (None outside a served method): the one
    way a served method, or its endpoint's `_authorize`, reads who sent what."""
    return _current_call.get()


def serving(call: CallInfo) -> contextvars.Token[CallInfo | None]:
    """Make `call` the current one (dispatch does; tests of `_authorize` may)."""
    return _current_call.set(call)


def parse_version(version: str) -> tuple[int, int]:
    """'major.minor' as integers; anything else is refused as Invalid."""
    try:
        major, minor = version.split(".")
        return int(major), int(minor)
    except (AttributeError, ValueError):
        raise exceptions.Invalid(reason=f"bad RPC version {version!r}") from None


def version_compatible(ours: str, theirs: str) -> bool:
    """Whether an endpoint at `ours` serves a message sent at `theirs`: the same
    major, and a minor no newer than ours (a newer receiver keeps every older
    minor working, so senders may be upgraded after receivers)."""
    (major, minor), (their_major, their_minor) = parse_version(ours), parse_version(theirs)
    return major == their_major and their_minor <= minor


class Endpoint(Protocol):
    """What serves a topic: public async methods taking (ctx, **kwargs), and a
    RPC_VERSION 'major.minor': a message of the same major and no newer minor is
    served.

    Compute hosts' bus users are refused by default: a message whose sender is a
    host (CallInfo.host) is served only if the endpoint defines
    `_host_may_call(call) -> bool` and it says yes; a broker message without a
    user-id is refused outright unless `[conductor] trust_unidentified_senders`.
    An endpoint may also define `async _authorize(ctx, args)`, run before every
    method (it reads the message from current_call()), raising to refuse it."""

    RPC_VERSION: str


def encode(message: dict[str, Any]) -> bytes:
    """Serialise a message; anything not JSON-serialisable fails here, in every backend."""
    return orjson.dumps(message)


def decode(data: bytes) -> dict[str, Any]:
    return orjson.loads(data)  # type: ignore[no-any-return]


def make_message(ctx: RequestContext, method: str, version: str,
                 args: dict[str, Any] | None) -> bytes:
    return encode({"method": method, "version": version, "context": ctx.to_dict(),
                   "args": args or {}})


_ACK_ON_RECEIPT = "_novalet_ack_on_receipt"
_Handler = TypeVar("_Handler")


def ack_on_receipt(handler: _Handler) -> _Handler:
    """Mark a cast handler whose message a broker bus acknowledges as it takes it,
    not once it ran (rpc/amqp.py): one that waits long for other messages of its
    own topic, which the deliveries it holds unacknowledged would otherwise keep
    from it (the consumer's prefetch), and that gains nothing from a redelivery."""
    setattr(handler, _ACK_ON_RECEIPT, True)
    return handler


def acks_on_receipt(endpoint: Any, data: bytes) -> bool:
    """Whether the message `data` is for a handler of `endpoint` marked so; False
    for a message that does not parse (dispatch answers that one)."""
    try:
        method = decode(data).get("method")
    except (orjson.JSONDecodeError, AttributeError):
        return False
    if not isinstance(method, str) or method.startswith("_"):
        return False
    return getattr(getattr(endpoint, method, None), _ACK_ON_RECEIPT, False) is True


def error_reply(exc: BaseException) -> dict[str, Any]:
    code = getattr(exc, "code", 500)
    return {"error": {"module": type(exc).__module__, "class": type(exc).__name__,
                      "message": str(exc), "code": code}}


def raise_from_reply(reply: dict[str, Any]) -> Any:
    """Return the reply's result, or re-raise the remote error as its own class when
    it is a Novalet error, else as RemoteError."""
    err = reply.get("error")
    if err is None:
        return reply.get("result")
    try:
        cls = getattr(importlib.import_module(err["module"]), err["class"])
    except (ImportError, AttributeError):
        cls = None
    if isinstance(cls, type) and issubclass(cls, exceptions.NovaletError):
        exc = cls(err["message"])
        exc.code = err.get("code", cls.code)
        raise exc
    raise RemoteError(reason=f"{err['class']}: {err['message']}")


def _host_may_call(endpoint: Any, call: CallInfo) -> bool:
    """Whether the call may be served as far as who sent it goes (see Endpoint)."""
    if call.host is None:
        return True  # the cloud's services, or this process itself
    if call.sender == UNIDENTIFIED:
        return False  # no identity and not trusted: not even a host's rights
    allows = getattr(endpoint, "_host_may_call", None)
    return bool(allows is not None and allows(call))


async def dispatch(endpoint: Any, topic: str, data: bytes, sender: str | None = None,
                   senders: Senders | None = None) -> dict[str, Any]:
    """Run one message against an endpoint; the reply carries the result or the error.
    `sender` is the bus user that sent it, as the transport vouches for it;
    `senders` (the bus's) says which compute host that user is."""
    message = decode(data)
    ctx = RequestContext.from_dict(message["context"])
    ctx.bind()
    method, version = message["method"], str(message["version"])
    func = getattr(endpoint, method, None)
    ours = getattr(endpoint, "RPC_VERSION", "1.0")
    try:
        compatible = version_compatible(ours, version)
    except exceptions.Invalid:
        compatible = False
    if func is None or method.startswith("_") or not compatible:
        return error_reply(NoSuchMethod(topic=topic, method=method, version=version))
    call = CallInfo(topic=topic, method=method, version=version, sender=sender,
                    host=(senders or Senders()).host_of(sender))
    serving(call)  # each message runs in a task of its own
    try:
        if not _host_may_call(endpoint, call):
            LOG.warning("Refused %s on %s from bus user %s (host %s)", method, topic,
                        sender or "(none)", call.host)
            raise NotAuthorizedForHost(sender=sender or "(none)", host=call.host,
                                       method=method, target=topic)
        authorize = getattr(endpoint, "_authorize", None)
        if authorize is not None:
            await authorize(ctx, message["args"])
        result = await func(ctx, **message["args"])
        return {"result": result}
    except exceptions.NovaletError as exc:
        LOG.info("%s on %s failed: %s", method, topic, exc)
        return error_reply(exc)
    except Exception as exc:
        LOG.exception("Unexpected error in %s on %s", method, topic)
        return error_reply(exc)


class Bus(abc.ABC):
    """One interface for every backend."""

    # Since when this process has been connected without a break (datetime.max
    # while it is not): silence from other services before then says nothing
    # about them (conductor/recovery.py).
    connected_since: dt.datetime = dt.datetime.min
    # Which compute host each message's sender is (from the configuration the bus
    # was made with: rpc/identity.Senders.from_conf).
    senders: Senders = Senders()

    def as_user(self, user: str) -> Bus:
        """This bus, its messages sent as bus user `user`. Over a broker the identity
        is the connection's own user (its transport_url), which the broker vouches
        for, so this is the same bus; the in-process bus stamps `user` on what it
        sends, so the receivers' checks run as they would across hosts."""
        return self

    @abc.abstractmethod
    async def call(self, ctx: RequestContext, topic: str, method: str,
                   args: dict[str, Any] | None = None, *, version: str = "1.0",
                   timeout: float | None = None) -> Any:
        """Send to one server of `topic` and wait for its result (or re-raise its error)."""

    @abc.abstractmethod
    async def cast(self, ctx: RequestContext, topic: str, method: str,
                   args: dict[str, Any] | None = None, *, version: str = "1.0") -> None:
        """Send to one server of `topic` without waiting."""

    @abc.abstractmethod
    async def fanout(self, ctx: RequestContext, topic: str, method: str,
                     args: dict[str, Any] | None = None, *, version: str = "1.0") -> None:
        """Send to every server of `topic` without waiting."""

    @abc.abstractmethod
    async def serve(self, topic: str, endpoint: Any) -> None:
        """Start delivering messages for `topic` to `endpoint`."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop serving and release the backend."""


def from_url(url: str, default_timeout: float, senders: Senders | None = None,
             **options: Any) -> Bus:
    """The backend a transport_url names: memory:// or rabbit://user:pass@host:port/vhost.
    `senders`: who is a compute host (rpc/identity.Senders.from_conf of the process's
    configuration); `options` go to the AMQP backend (prefetch, heartbeat, name)."""
    if url.startswith("memory://"):
        from novalet.rpc.inprocess import InProcessBus
        return InProcessBus(default_timeout, senders=senders)
    if url.startswith(("rabbit://", "amqp://")):
        from novalet.rpc.amqp import AmqpBus
        return AmqpBus(url, default_timeout, senders=senders, **options)
    raise exceptions.Invalid(reason=f"unsupported transport_url {url!r}; use memory:// "
                             "or rabbit://user:password@host:port/vhost")


def caller() -> str:
    """module:function of the code that made the call, for timeout messages."""
    for frame in inspect.stack()[2:8]:
        module = frame.frame.f_globals.get("__name__", "?")
        if not module.startswith("novalet.rpc"):
            return f"{module}:{frame.function}"
    return "?"
