"""The console proxies of `novalet up` against the fake driver's consoles.

The cloud (and the proxies' token checks) run on the test's event loop, so every
blocking client (websockets' sync client, urllib) runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import sys
import textwrap
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from novalet.console import vnc_auth
from novalet.console.types import PROTOCOL_OF
from novalet.console.websocket_proxy import token_label
from novalet.service.allinone import AllInOne
from tests.functional.conftest import Api, boot, delete_server, wait_for

async def console_url(api: Api, server_id: str, console_type: str) -> str:
    """The console URL the API gives (POST remote-consoles, 2.6)."""
    resp = await api.request("POST", f"/compute/v2.1/servers/{server_id}/remote-consoles",
                             version="2.6", json={"remote_console": {
                                 "protocol": PROTOCOL_OF[console_type], "type": console_type}})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["remote_console"]["url"])


def token_of(url: str) -> str:
    query = parse_qs(urlsplit(url).query)
    if "path" in query:  # noVNC: path=?token=…
        query = parse_qs(urlsplit(unquote(query["path"][0])).query)
    key = "VncPassword" if "VncPassword" in query else "token"
    return query[key][0]


def proxy_port(cloud: AllInOne, name: str) -> int:
    return cloud.console_proxies.running[name].port


def ws_session(uri: str, send: bytes | None = None, expect: int = 1,
               **options: Any) -> list[bytes]:
    """Open the websocket, read `expect` messages (after sending `send`)."""
    got: list[bytes] = []
    with connect(uri, open_timeout=10, close_timeout=2, **options) as ws:
        first = ws.recv(timeout=10)
        assert isinstance(first, bytes)
        got.append(first)
        if send is not None:
            ws.send(send)
        while len(got) < expect:
            message = ws.recv(timeout=10)
            assert isinstance(message, bytes)
            got.append(message)
    return got


def refused(uri: str, **options: Any) -> tuple[int, str]:
    """The status and body of a refused websocket upgrade."""
    with pytest.raises(InvalidStatus) as info:
        with connect(uri, open_timeout=10, **options):
            pass
    response = info.value.response
    return response.status_code, response.body.decode(errors="replace") if response.body else ""


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def ws_uri(cloud: AllInOne, name: str, token: str) -> str:
    return f"ws://127.0.0.1:{proxy_port(cloud, name)}/?token={token}"


async def test_novnc_websocket_relays_the_instances_rfb_display(api: Api) -> None:
    server = await boot(api)
    url = await console_url(api, server["id"], "novnc")
    assert url.startswith(f"http://127.0.0.1:{proxy_port(api.cloud, 'novncproxy')}/vnc_lite.html?")
    token = token_of(url)

    def rfb_through_websocket() -> bytes:
        with connect(ws_uri(api.cloud, "novncproxy", token), open_timeout=10) as ws:
            buffer = b""

            def read(count: int) -> bytes:
                nonlocal buffer
                while len(buffer) < count:
                    message = ws.recv(timeout=10)
                    assert isinstance(message, bytes)
                    buffer += message
                data, buffer = buffer[:count], buffer[count:]
                return data
            assert read(12) == b"RFB 003.008\n"
            ws.send(b"RFB 003.008\n")
            assert read(2) == b"\x01\x01"
            ws.send(b"\x01")
            assert read(4) == b"\0\0\0\0"
            ws.send(b"\x01")  # ClientInit, shared
            read(20)
            (length,) = struct.unpack(">I", read(4))
            return read(length)
    assert await asyncio.to_thread(rfb_through_websocket) == server["id"].encode()


async def test_serial_websocket_greets_with_the_instance_and_echoes(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    server = await boot(api)
    token = token_of(await console_url(api, server["id"], "serial"))
    with caplog.at_level(logging.INFO, logger="novalet.console"):
        greeting, echo = await asyncio.to_thread(
            ws_session, ws_uri(api.cloud, "serialproxy", token), b"uname -a\n", 2)
    assert greeting == f"fake-serial {server['id']}\n".encode()
    assert echo == b"uname -a\n"
    # The logs name the token by a hash prefix, never in full.
    assert f"token {token_label(token)} opens the serial console" in caplog.text
    assert token not in caplog.text


async def test_spice_websocket_takes_the_token_from_its_cookie(api: Api) -> None:
    server = await boot(api)
    url = await console_url(api, server["id"], "spice-html5")
    assert "/spice_auto.html?" in url
    port = proxy_port(api.cloud, "spicehtml5proxy")
    # What spice_auto.html does: the token goes to a cookie, the socket to /websockify.
    greeting, = await asyncio.to_thread(
        ws_session, f"ws://127.0.0.1:{port}/websockify",
        additional_headers={"Cookie": f"token={token_of(url)}"})
    assert greeting == f"fake-spice {server['id']}\n".encode()


async def test_a_token_of_one_instance_never_reaches_another(api: Api) -> None:
    first = await boot(api, name="a")
    second = await boot(api, name="b")
    for server in (first, second, first):
        token = token_of(await console_url(api, server["id"], "serial"))
        greeting, = await asyncio.to_thread(ws_session, ws_uri(api.cloud, "serialproxy", token))
        assert greeting == f"fake-serial {server['id']}\n".encode()


async def test_unknown_missing_and_wrong_type_tokens_are_refused(api: Api) -> None:
    server = await boot(api)
    status, body = await asyncio.to_thread(refused, ws_uri(api.cloud, "serialproxy", "nope"))
    assert status == 403 and "token refused" in body
    port = proxy_port(api.cloud, "serialproxy")
    status, body = await asyncio.to_thread(refused, f"ws://127.0.0.1:{port}/")
    assert status == 403 and "No console token" in body
    novnc = token_of(await console_url(api, server["id"], "novnc"))
    status, body = await asyncio.to_thread(refused, ws_uri(api.cloud, "serialproxy", novnc))
    assert status == 403 and "novnc" in body and novnc not in body
    # The same token is good where it belongs.
    await asyncio.to_thread(ws_session, ws_uri(api.cloud, "novncproxy", novnc))


async def test_an_expired_token_is_refused(api: Api) -> None:
    server = await boot(api)
    api.cloud.conf.set("consoleauth", "token_ttl", -1)
    token = token_of(await console_url(api, server["id"], "serial"))
    status, _ = await asyncio.to_thread(refused, ws_uri(api.cloud, "serialproxy", token))
    assert status == 403


async def test_a_token_is_refused_once_its_server_is_deleted(api: Api) -> None:
    server = await boot(api)
    token = token_of(await console_url(api, server["id"], "serial"))
    await asyncio.to_thread(ws_session, ws_uri(api.cloud, "serialproxy", token))
    await delete_server(api, server["id"])
    status, _ = await asyncio.to_thread(refused, ws_uri(api.cloud, "serialproxy", token))
    assert status == 403


async def test_a_token_from_before_a_restart_is_refused(api: Api) -> None:
    """Stopped, the guest has no display; started again, it listens elsewhere: the
    compute host no longer vouches for the token's port either way."""
    server = await boot(api)
    token = token_of(await console_url(api, server["id"], "serial"))
    await asyncio.to_thread(ws_session, ws_uri(api.cloud, "serialproxy", token))
    for action, status in (("os-stop", "SHUTOFF"), ("os-start", "ACTIVE")):
        resp = await api.request("POST", f"/compute/v2.1/servers/{server['id']}/action",
                                 json={action: None})
        assert resp.status_code == 202
        await wait_for(api, server["id"], status)
        refusal, _ = await asyncio.to_thread(refused, ws_uri(api.cloud, "serialproxy", token))
        assert refusal == 403
    fresh = token_of(await console_url(api, server["id"], "serial"))
    greeting, = await asyncio.to_thread(ws_session, ws_uri(api.cloud, "serialproxy", fresh))
    assert greeting == f"fake-serial {server['id']}\n".encode()


async def test_a_cross_origin_upgrade_is_refused(api: Api) -> None:
    server = await boot(api)
    token = token_of(await console_url(api, server["id"], "serial"))
    uri = ws_uri(api.cloud, "serialproxy", token)
    status, body = await asyncio.to_thread(refused, uri, origin="http://evil.example")
    assert status == 403 and "Origin" in body
    port = proxy_port(api.cloud, "serialproxy")
    greeting, = await asyncio.to_thread(ws_session, uri, origin=f"http://127.0.0.1:{port}")
    assert server["id"].encode() in greeting


async def test_the_web_clients_are_served_without_listings(cloud: AllInOne) -> None:
    novnc = f"http://127.0.0.1:{proxy_port(cloud, 'novncproxy')}"
    spice = f"http://127.0.0.1:{proxy_port(cloud, 'spicehtml5proxy')}"
    status, page = await asyncio.to_thread(http_get, f"{novnc}/vnc_lite.html")
    assert status == 200 and "noVNC" in page
    status, page = await asyncio.to_thread(http_get, f"{spice}/spice_auto.html")
    assert status == 200 and "spice" in page.lower()
    status, _ = await asyncio.to_thread(http_get, f"{novnc}/core/")
    assert status == 404
    status, _ = await asyncio.to_thread(http_get, f"{novnc}/../../../etc/passwd")
    assert status == 404
    serial = f"http://127.0.0.1:{proxy_port(cloud, 'serialproxy')}"
    status, _ = await asyncio.to_thread(http_get, f"{serial}/")
    assert status == 405


# --- the native VNC proxy ------------------------------------------------------

async def vnc_login(port: int, password: str) -> tuple[bytes, asyncio.StreamReader,
                                                        asyncio.StreamWriter]:
    """An RFB 3.8 client's VNC auth through the proxy: (SecurityResult, streams)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await reader.readexactly(12) == b"RFB 003.008\n"
    writer.write(b"RFB 003.008\n")
    assert await reader.readexactly(2) == b"\x01\x02"
    writer.write(b"\x02")
    challenge = await reader.readexactly(16)
    writer.write(vnc_auth.response(password, challenge))
    return await reader.readexactly(4), reader, writer


async def test_native_vnc_with_the_token_as_password_reaches_server_init(api: Api) -> None:
    server = await boot(api)
    url = await console_url(api, server["id"], "xvpvnc")
    port = proxy_port(api.cloud, "xvpvncproxy")
    assert url.startswith(f"vnc://127.0.0.1:{port}?VncPassword=")
    result, reader, writer = await vnc_login(port, token_of(url))
    try:
        assert result == b"\0\0\0\0"
        writer.write(b"\x01")  # ClientInit goes through to the display
        header = await asyncio.wait_for(reader.readexactly(24), 10)
        assert struct.unpack(">HH", header[:4]) == (640, 480)
        name = await reader.readexactly(struct.unpack(">I", header[20:])[0])
        assert name == server["id"].encode()
    finally:
        writer.close()


async def test_native_vnc_wrong_password_fails_with_a_reason(api: Api) -> None:
    server = await boot(api)
    await console_url(api, server["id"], "xvpvnc")
    result, reader, writer = await vnc_login(proxy_port(api.cloud, "xvpvncproxy"), "wrong!!!")
    try:
        assert result == b"\0\0\0\1"
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        assert b"Authentication failed" in await reader.readexactly(length)
        assert await reader.read() == b""
    finally:
        writer.close()


async def test_a_novnc_token_is_no_native_vnc_password(api: Api) -> None:
    server = await boot(api)
    token = token_of(await console_url(api, server["id"], "novnc"))
    result, _, writer = await vnc_login(proxy_port(api.cloud, "xvpvncproxy"), token[:8])
    writer.close()
    assert result == b"\0\0\0\1"


VNCDOTOOL = textwrap.dedent("""
    import sys
    from vncdotool import api
    client = api.connect(sys.argv[1], password=sys.argv[2], timeout=20)
    try:
        client.keyPress("a")  # runs once the handshake is done
        print("handshake done", flush=True)
    finally:
        client.disconnect()
        api.shutdown()
""")


async def test_vncdotool_logs_in_through_the_native_proxy(api: Api) -> None:
    server = await boot(api)
    token = token_of(await console_url(api, server["id"], "xvpvnc"))
    # vncdotool's twisted reactor can run once per process: give it its own.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", VNCDOTOOL, f"127.0.0.1::{proxy_port(api.cloud, 'xvpvncproxy')}",
        token, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0 and b"handshake done" in out, out.decode(errors="replace")
