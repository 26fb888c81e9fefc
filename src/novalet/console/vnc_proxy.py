"""The native VNC proxy: a TCP server for ordinary VNC clients, whose console token
is the VNC password.

Toward the client it is an RFB server offering version 3.8 and only VNC
authentication (security type 2). It sends a fresh challenge, and the
conductor finds the native VNC token whose password answers it. Then it opens
the guest's display (QEMU's VNC, no authentication), does that handshake
itself choosing security type None, tells the client its authentication
succeeded, and from there relays bytes both ways: the client's ClientInit and
everything after it pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import struct
from collections.abc import Awaitable, Callable

from novalet.common.context import RequestContext
from novalet.console import vnc_auth
from novalet.console.types import NATIVE_VNC, Authorization

LOG = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 30.0
"""Seconds a client (or the guest's display) has for the whole handshake."""

MAX_CONNECTIONS = 256
"""Connections the proxy serves at once; more are closed at once."""

FAILURE_DELAY = 1.0
"""Seconds before a wrong password is answered (slows guessing)."""

SECURITY_NONE = 1
SECURITY_VNC_AUTH = 2
RESULT_OK = struct.pack(">I", 0)
RESULT_FAILED = struct.pack(">I", 1)
_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")

VncAuthCheck = Callable[[RequestContext, bytes, bytes], Awaitable[Authorization | None]]
"""ConductorAPI.console_check_vnc_auth."""


class HandshakeError(Exception):
    """The other side broke the RFB handshake; the message says how."""


class CheckFailed(Exception):
    """The conductor could not be asked (as opposed to: no token matched)."""


def version_bytes(minor: int) -> bytes:
    return f"RFB 003.{minor:03d}\n".encode()


def parse_version(data: bytes) -> int:
    """The RFB 3.x minor version we speak with a peer that sent `data`: 3, 7 or 8
    (3.4-3.6 are 3.3, later ones such as Apple's 3.889 are 3.8)."""
    match = _VERSION.fullmatch(data)
    if match is None or int(match.group(1)) != 3:
        raise HandshakeError(f"not an RFB 3.x version: {data[:12]!r}")
    minor = int(match.group(2))
    return 8 if minor >= 8 else 7 if minor == 7 else 3


def failure(minor: int, reason: str) -> bytes:
    """A failed SecurityResult; 3.8 adds the reason."""
    if minor < 8:
        return RESULT_FAILED
    text = reason.encode()
    return RESULT_FAILED + struct.pack(">I", len(text)) + text


async def read_reason(reader: asyncio.StreamReader) -> str:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    return (await reader.readexactly(min(length, 4096))).decode(errors="replace")


async def client_auth(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      challenge: bytes) -> tuple[int, bytes]:
    """The server side of the client's handshake up to its VNC auth answer:
    (the client's minor version, its 16-byte answer)."""
    writer.write(version_bytes(8))
    await writer.drain()
    minor = parse_version(await reader.readexactly(12))
    if minor == 3:
        writer.write(struct.pack(">I", SECURITY_VNC_AUTH))  # 3.3: the server decides
    else:
        writer.write(bytes([1, SECURITY_VNC_AUTH]))
        await writer.drain()
        choice = (await reader.readexactly(1))[0]
        if choice != SECURITY_VNC_AUTH:
            writer.write(failure(minor, "only VNC authentication is offered"))
            raise HandshakeError(f"the client chose security type {choice}, not VNC auth")
    writer.write(challenge)
    await writer.drain()
    return minor, await reader.readexactly(vnc_auth.CHALLENGE_BYTES)


async def target_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The client side of the handshake with the guest's display, choosing no
    authentication; returns once the display accepted (it then awaits ClientInit)."""
    minor = parse_version(await reader.readexactly(12))
    writer.write(version_bytes(minor))
    await writer.drain()
    if minor == 3:
        (chosen,) = struct.unpack(">I", await reader.readexactly(4))
        if chosen == 0:
            raise HandshakeError(f"the display refused: {await read_reason(reader)}")
        if chosen != SECURITY_NONE:
            raise HandshakeError(f"the display wants security type {chosen}, not None")
        return
    count = (await reader.readexactly(1))[0]
    if count == 0:
        raise HandshakeError(f"the display refused: {await read_reason(reader)}")
    offered = await reader.readexactly(count)
    if SECURITY_NONE not in offered:
        raise HandshakeError(f"the display offers security types {list(offered)}, not None")
    writer.write(bytes([SECURITY_NONE]))
    await writer.drain()
    if minor == 8:
        result = await reader.readexactly(4)
        if result != RESULT_OK:
            raise HandshakeError(f"the display refused: {await read_reason(reader)}")


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Copy until EOF, then half-close the other side; False if a side failed."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        return False
    return True


async def relay(a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter,
                b_reader: asyncio.StreamReader, b_writer: asyncio.StreamWriter) -> None:
    """Bytes both ways until both sides are done. A side that fails (a reset) ends
    the session at once: the other direction may never see data again (a VNC
    display sends only what the client asks for), so waiting for it would hold
    the guest's display open forever."""
    forward = asyncio.create_task(pipe(a_reader, b_writer))
    backward = asyncio.create_task(pipe(b_reader, a_writer))
    try:
        done, pending = await asyncio.wait({forward, backward},
                                           return_when=asyncio.FIRST_COMPLETED)
        if all(task.result() for task in done):  # a clean EOF: let the other side finish
            await asyncio.gather(*pending)
    finally:
        for task in (forward, backward):
            task.cancel()


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 2)


class VncProxy:
    """The native VNC proxy's TCP server."""

    def __init__(self, host: str, port: int, check: VncAuthCheck,
                 timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.host, self.requested_port = host, port
        self.check = check
        self.timeout = timeout
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.requested_port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self.connections) >= MAX_CONNECTIONS:
            LOG.warning("native VNC proxy: %d connections open; refusing one more",
                        len(self.connections))
            await close(writer)
            return
        self.connections.add(task)
        ctx = RequestContext.admin()
        ctx.bind()
        peer = writer.get_extra_info("peername")
        try:
            await self._proxy(ctx, reader, writer, peer)
        except (HandshakeError, asyncio.IncompleteReadError, TimeoutError,
                ConnectionError, OSError) as exc:
            LOG.info("native VNC proxy: connection from %s ended: %s", peer,
                     exc if str(exc) else type(exc).__name__)
        finally:
            self.connections.discard(task)
            await close(writer)

    async def _proxy(self, ctx: RequestContext, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, peer: object) -> None:
        challenge = vnc_auth.challenge()
        minor, answer = await asyncio.wait_for(client_auth(reader, writer, challenge),
                                               self.timeout)
        try:
            auth = await self._authorize(ctx, challenge, answer)
        except CheckFailed:
            writer.write(failure(minor, "The console service is unavailable; try again"))
            await writer.drain()
            return
        if auth is None:
            LOG.info("native VNC proxy: %s gave a password no live token has", peer)
            await asyncio.sleep(FAILURE_DELAY)  # slows password guessing
            writer.write(failure(minor, "Authentication failed: unknown or expired console "
                                        "token"))
            await writer.drain()
            return
        target = auth.target
        LOG.info("native VNC proxy: %s opens the console of instance %s", peer,
                 auth.instance_uuid)
        try:
            t_reader, t_writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), self.timeout)
        except (TimeoutError, OSError) as exc:
            writer.write(failure(minor, "The console is not available"))
            await writer.drain()
            raise HandshakeError(f"console of {auth.instance_uuid}: {exc}") from exc
        try:
            try:
                await asyncio.wait_for(target_handshake(t_reader, t_writer), self.timeout)
            except (HandshakeError, asyncio.IncompleteReadError, TimeoutError) as exc:
                writer.write(failure(minor, "The console is not available"))
                await writer.drain()
                raise HandshakeError(f"console of {auth.instance_uuid}: {exc}") from exc
            writer.write(RESULT_OK)
            await writer.drain()
            await relay(reader, writer, t_reader, t_writer)
        finally:
            await close(t_writer)

    async def _authorize(self, ctx: RequestContext, challenge: bytes,
                         answer: bytes) -> Authorization | None:
        try:
            result = await self.check(ctx, challenge, answer)
        except Exception as exc:  # the bus's errors, whatever the backend
            LOG.warning("native VNC proxy: could not check a password: %s", exc)
            raise CheckFailed() from exc
        if result is None:
            return None
        return result if result.console_type == NATIVE_VNC else None
