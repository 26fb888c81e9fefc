"""The native VNC proxy's RFB handshake pieces, each against a scripted peer."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from novalet.console import vnc_auth
from novalet.console import vnc_proxy as rfb

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.mark.parametrize(("sent", "minor"), [
    (b"RFB 003.003\n", 3), (b"RFB 003.005\n", 3), (b"RFB 003.007\n", 7),
    (b"RFB 003.008\n", 8), (b"RFB 003.889\n", 8)])
def test_versions_map_to_the_three_we_speak(sent: bytes, minor: int) -> None:
    assert rfb.parse_version(sent) == minor


@pytest.mark.parametrize("sent", [b"RFB 004.001\n", b"GET / HTTP/1.1", b"RFB 003.008 "])
def test_other_greetings_are_handshake_errors(sent: bytes) -> None:
    with pytest.raises(rfb.HandshakeError):
        rfb.parse_version(sent)


def test_failure_carries_a_reason_only_from_3_8() -> None:
    assert rfb.failure(3, "no") == b"\0\0\0\1"
    assert rfb.failure(7, "no") == b"\0\0\0\1"
    assert rfb.failure(8, "no") == b"\0\0\0\1\0\0\0\2no"


@pytest.fixture
async def pair() -> AsyncIterator[Callable[[Peer], Awaitable[tuple[
        asyncio.StreamReader, asyncio.StreamWriter]]]]:
    """Connects to a one-shot server running `peer`."""
    servers: list[asyncio.Server] = []

    async def connect(peer: Peer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        servers.append(server)
        return await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    yield connect
    for server in servers:
        server.close()


async def serve_client_auth(challenge: bytes, results: list[tuple[int, bytes]]) -> Peer:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            results.append(await rfb.client_auth(reader, writer, challenge))
        except rfb.HandshakeError:
            await writer.drain()
        writer.close()
    return peer


async def test_a_3_8_client_picks_vnc_auth_and_answers(pair: Any) -> None:
    challenge, results = vnc_auth.challenge(), []
    reader, writer = await pair(await serve_client_auth(challenge, results))
    assert await reader.readexactly(12) == b"RFB 003.008\n"
    writer.write(b"RFB 003.008\n")
    assert await reader.readexactly(2) == b"\x01\x02"
    writer.write(b"\x02")
    assert await reader.readexactly(16) == challenge
    writer.write(vnc_auth.response("secret", challenge))
    await writer.drain()
    await reader.read()
    assert results == [(8, vnc_auth.response("secret", challenge))]


async def test_a_3_3_client_is_told_vnc_auth(pair: Any) -> None:
    challenge, results = vnc_auth.challenge(), []
    reader, writer = await pair(await serve_client_auth(challenge, results))
    await reader.readexactly(12)
    writer.write(b"RFB 003.003\n")
    assert await reader.readexactly(4) == struct.pack(">I", 2)
    assert await reader.readexactly(16) == challenge
    writer.write(bytes(16))
    await writer.drain()
    await reader.read()
    assert results == [(3, bytes(16))]


async def test_a_client_choosing_none_is_refused_with_a_reason(pair: Any) -> None:
    results: list[tuple[int, bytes]] = []
    reader, writer = await pair(await serve_client_auth(vnc_auth.challenge(), results))
    await reader.readexactly(12)
    writer.write(b"RFB 003.008\n")
    await reader.readexactly(2)
    writer.write(b"\x01")
    assert (await reader.read()).startswith(b"\0\0\0\1")
    assert results == []


def display(version: bytes, security: bytes, result: bytes | None) -> Peer:
    """A display (QEMU's role) speaking `version`, offering `security`."""
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(version)
            await reader.readexactly(12)
            writer.write(security)
            if len(security) > 1 and security[0]:
                await reader.readexactly(1)
            if result is not None:
                writer.write(result)
            await writer.drain()
            await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the proxy gave up on us
        writer.close()
    return peer


@pytest.mark.parametrize(("version", "security", "result"), [
    (b"RFB 003.008\n", b"\x02\x02\x01", b"\0\0\0\0"),
    (b"RFB 003.007\n", b"\x01\x01", None),
    (b"RFB 003.003\n", struct.pack(">I", 1), None)])
async def test_the_display_handshake_chooses_none(pair: Any, version: bytes, security: bytes,
                                                   result: bytes | None) -> None:
    reader, writer = await pair(display(version, security, result))
    await asyncio.wait_for(rfb.target_handshake(reader, writer), 5)
    writer.close()


@pytest.mark.parametrize(("version", "security", "result"), [
    (b"RFB 003.008\n", b"\x01\x02", None),  # VNC auth only
    (b"RFB 003.008\n", b"\x00\x00\x00\x00\x03bad", None),  # refused outright
    (b"RFB 003.008\n", b"\x01\x01", b"\0\0\0\1\0\0\0\4full"),
    (b"RFB 003.003\n", struct.pack(">I", 2), None)])
async def test_a_display_that_wants_auth_or_refuses_is_an_error(
        pair: Any, version: bytes, security: bytes, result: bytes | None) -> None:
    reader, writer = await pair(display(version, security, result))
    with pytest.raises(rfb.HandshakeError):
        await asyncio.wait_for(rfb.target_handshake(reader, writer), 5)
    writer.close()


async def test_the_proxy_refuses_a_password_the_check_rejects() -> None:
    asked: list[tuple[bytes, bytes]] = []

    async def check(ctx: object, challenge: bytes, answer: bytes) -> None:
        asked.append((challenge, answer))
        return None
    proxy = rfb.VncProxy("127.0.0.1", 0, check)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        await reader.readexactly(12)
        writer.write(b"RFB 003.007\n")  # 3.7: no reason string
        await reader.readexactly(2)
        writer.write(b"\x02")
        challenge = await reader.readexactly(16)
        writer.write(vnc_auth.response("password", challenge))
        assert await asyncio.wait_for(reader.read(), 5) == b"\0\0\0\1"
        assert asked == [(challenge, vnc_auth.response("password", challenge))]
        writer.close()
    finally:
        await proxy.stop()


async def test_a_silent_client_is_dropped_after_the_handshake_timeout() -> None:
    async def check(ctx: object, challenge: bytes, answer: bytes) -> None:
        raise AssertionError("never asked")
    proxy = rfb.VncProxy("127.0.0.1", 0, check, timeout=0.2)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await asyncio.wait_for(reader.read(), 5) == b"RFB 003.008\n"
        writer.close()
    finally:
        await proxy.stop()


class _Sink:
    """A StreamWriter stand-in that keeps what is written."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        return None


async def test_relay_ends_both_ways_when_one_side_resets() -> None:
    """A client that resets must not leave the display's side waiting for data that
    a VNC display only sends when asked."""
    client, display = asyncio.StreamReader(), asyncio.StreamReader()
    client.feed_data(b"some input")
    client.set_exception(ConnectionResetError())
    await asyncio.wait_for(rfb.relay(client, _Sink(), display, _Sink()), 2)  # type: ignore[arg-type]


async def test_relay_lets_the_other_side_finish_after_a_clean_eof() -> None:
    client, display = asyncio.StreamReader(), asyncio.StreamReader()
    to_client, to_display = _Sink(), _Sink()
    client.feed_eof()
    display.feed_data(b"last frame")
    display.feed_eof()
    await asyncio.wait_for(rfb.relay(client, to_client, display, to_display), 2)  # type: ignore[arg-type]
    assert to_client.data == b"last frame"
