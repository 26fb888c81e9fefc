"""Issue 14, item 1: request limits at the edge, before parsing.

Each test is named after a finding: a 100 MB body took the server from 191 MB
to 1.6 GB and stalled every request; 99 MB of server metadata stalled the API;
JSON nested ~1000 deep and minRam=9223372036854775808 gave 500s; any
Content-Type was read as JSON; control characters were stored in names; idle
and slow clients were never cut off; a client dropping mid-body was a 500.
The tests that need a real socket run uvicorn on a free port in this process.
"""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import pytest

from novalet.service.allinone import AllInOne
from novalet.service.api import http_server
from tests.functional.conftest import Api, boot

# Its tests time the API under a flood: not while other tests load the CPU.
pytestmark = pytest.mark.serial

S = "/compute/v2.1/servers"
TOKENS = "/identity/v3/auth/tokens"
MB = 1024 * 1024
LIMIT = 114688


# --- a real HTTP server on a free port ---

@dataclass
class Served:
    cloud: AllInOne
    port: int

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock


@pytest.fixture
async def served(cloud: AllInOne) -> AsyncIterator[Served]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    cloud.conf.set("api", "listen", "127.0.0.1")
    cloud.conf.set("api", "port", port)
    cloud.conf.set("wsgi", "client_header_timeout", 1.0)
    cloud.conf.set("wsgi", "client_socket_timeout", 2.0)
    server = http_server(cloud.app, cloud.conf)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the API server did not start"
        await asyncio.sleep(0.01)
    try:
        yield Served(cloud, port)
    finally:
        server.should_exit = True
        await serving


def _status(sock: socket.socket, timeout: float = 5.0) -> int | None:
    """The status code of the answer waiting on `sock` (None if the connection was
    reset or closed before one came)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            piece = sock.recv(4096)
            if not piece:
                break
            data += piece
    except (ConnectionResetError, TimeoutError):
        pass
    return int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None


def _whole_status(sock: socket.socket) -> int | None:
    """The status of one whole response (headers and Content-Length body) read off
    a kept-alive connection."""
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(4096)
        if not piece:
            return None
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(4096)
    return int(head.split()[1])


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (None if it stayed open)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


class Prober:
    """GET / every 20 ms on its own connection, from a thread, timing each. A probe
    that fails (not a 200, or an exception) is recorded and stops the thread; leaving
    the `with` block asserts, in the caller's thread, that none did."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.times: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as client:
                while not self._stop.is_set():
                    started = time.monotonic()
                    status = client.get("/").status_code
                    if status != 200:
                        self.failures.append(f"GET / answered {status}")
                        return
                    self.times.append(time.monotonic() - started)
                    time.sleep(0.02)
        except Exception as exc:  # reported by __exit__, in the test's thread
            self.failures.append(f"GET / failed: {exc!r}")

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if exc[0] is None:
            assert not self._thread.is_alive(), "the prober did not stop within 60 s"
            assert not self.failures, self.failures


def test_a_failed_probe_fails_the_test_not_just_its_thread() -> None:
    """Was: the probe asserted in its thread, which only ended the thread."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = int(free.getsockname()[1])  # nothing listens there
    prober = Prober(port)
    with pytest.raises(AssertionError, match="GET / failed: ConnectError"):
        with prober:
            time.sleep(0.2)


def _auth_array_chunks(total: int) -> Iterator[bytes]:
    """{"auth":[0,0,0,...]} of about `total` bytes, in 64 KiB pieces."""
    yield b'{"auth":['
    piece = b"0," * (32 * 1024)
    for _ in range(total // len(piece)):
        yield piece
    yield b"0]}"


def _send_body(port: int, path: str, chunks: Iterator[bytes], *,
               length: int | None = None) -> tuple[int | None, int]:
    """POST a body (chunked, or with Content-Length `length`), stopping as soon as the
    server answers or hangs up: the status it sent (None if it sent none) and the
    bytes of body sent. The answer is read even when the server reset the
    connection after it (it closes with our unread body in its buffer)."""
    sent = 0
    framing = ("Transfer-Encoding: chunked" if length is None
               else f"Content-Length: {length}")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     f"\r\n{framing}\r\n\r\n".encode())
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break  # answered (or closed) before this chunk
                sock.sendall(chunk if length is not None
                             else b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            else:
                if length is None:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _status(sock, timeout=60), sent


# --- the body limit ---

@pytest.mark.parametrize("framing", ["chunked", "content-length"])
async def test_100mb_auth_body_is_413_without_memory_or_stall(
        served: Served, framing: str) -> None:
    """Was: 191 MB → 1.6 GB and every request stalled ~11 s. The 413 must really
    arrive: a server that just dropped the connection would fail this."""
    process = psutil.Process()
    length = None if framing == "chunked" else 100 * MB + 12
    with Prober(served.port) as prober:
        await asyncio.sleep(0.5)
        before_rss = process.memory_info().rss
        baseline = statistics.median(prober.times)
        during_from = len(prober.times)
        status, sent = await asyncio.to_thread(
            _send_body, served.port, TOKENS, _auth_array_chunks(100 * MB), length=length)
        await asyncio.sleep(0.3)  # a few more probes after the refusal
        during = prober.times[during_from:]
        grown = (process.memory_info().rss - before_rss) / MB
    print(f"100 MB {framing} body: status {status}, {sent / MB:.1f} MB sent before the "
          f"server hung up, RSS {grown:+.1f} MB, GET / median {baseline * 1000:.1f} ms "
          f"before, max {max(during, default=0) * 1000:.1f} ms during")
    assert status == 413
    assert sent < 20 * MB, f"the server read {sent / MB:.0f} MB of a refused body"
    assert grown < 50, f"RSS grew by {grown:.0f} MB"
    assert during and max(during) - baseline < 0.1, (baseline, max(during))


async def test_100mb_content_length_is_413_before_the_body(served: Served) -> None:
    def run() -> int | None:
        with served.connect() as sock:
            sock.sendall(f"POST {TOKENS} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         f"application/json\r\nContent-Length: {100 * MB}\r\n\r\n".encode())
            return _status(sock)  # answered with not one byte of the body sent
    assert await asyncio.to_thread(run) == 413


async def test_chunked_auth_body_past_the_limit_is_413(served: Served) -> None:
    status, sent = await asyncio.to_thread(
        _send_body, served.port, TOKENS, iter([b'{"auth":[' + b"0," * LIMIT]))
    assert status == 413


async def test_99mb_server_metadata_is_413(api: Api) -> None:
    """Was: the API stalled for 52 s."""
    server = await boot(api)
    body = b'{"metadata":{' + b",".join(b'"k%d":"%s"' % (i, b"v" * 200)
                                        for i in range(99 * MB // 210)) + b"}}"
    resp = await api.request("POST", f"{S}/{server['id']}/metadata", content=body,
                             headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["overLimit"]["message"] == (
        f"Request is too large. Larger than max_request_body_size ({LIMIT}).")
    assert resp.headers["connection"] == "close"

    async def streamed() -> AsyncIterator[bytes]:  # chunked: no Content-Length
        for start in range(0, len(body), MB):
            yield body[start:start + MB]
    resp = await api.request("POST", f"{S}/{server['id']}/metadata", content=streamed(),
                             headers={"Content-Type": "application/json"})
    assert resp.status_code == 413


async def test_body_just_under_the_limit_is_read(api: Api) -> None:
    resp = await api.client.post(TOKENS, content=b'{"auth": "' + b"a" * (LIMIT - 20) + b'"}',
                                 headers={"Content-Type": "application/json"})
    assert resp.status_code == 400  # read and validated, not refused for its size


async def test_image_upload_is_not_bound_by_the_json_limit(api: Api) -> None:
    resp = await api.request("POST", "/image/v2/images", json={
        "name": "big", "disk_format": "raw", "container_format": "bare"})
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    resp = await api.request("PUT", f"/image/v2/images/{image_id}/file",
                             content=b"x" * (2 * MB),
                             headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    resp = await api.request("GET", f"/image/v2/images/{image_id}")
    assert resp.json()["size"] == 2 * MB


async def test_max_request_body_size_is_configurable(api: Api) -> None:
    api.cloud.conf.set("oslo_middleware", "max_request_body_size", 1000)
    from novalet.api.app import build_app
    transport = httpx.ASGITransport(app=build_app(api.cloud.app.state.cloud))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        resp = await client.post(TOKENS, content=b"{" + b" " * 1000 + b"}",
                                 headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == 413  # Keystone's shape on the identity API


# --- nesting, integers, NUL ---

def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("path", [TOKENS, S, "/compute/v2.1/flavors",
                                  "/compute/v2.1/os-keypairs"])
async def test_json_nested_1000_deep_is_400(api: Api, path: str) -> None:
    """Was a 500 (RecursionError), anonymously on the token route."""
    for body in (b'{"auth": ' + _nested(1000) + b"}", _nested(1000),
                 b'{"server": {"name": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"}}"):
        resp = await api.request("POST", path, content=body,
                                 headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert "nests deeper than 64 levels" in resp.text


async def test_json_nesting_at_the_limit_is_validated_not_refused(api: Api) -> None:
    resp = await api.request("POST", S, content=b'{"server": ' + _nested(63) + b"}",
                             headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "nests deeper" not in resp.text
    # Brackets inside strings are text, not nesting.
    resp = await api.request("POST", S, json={"server": {"name": "[" * 500}})
    assert resp.status_code == 400
    assert "nests deeper" not in resp.text


async def test_minram_past_the_database_integer_is_400(api: Api) -> None:
    """Was a 500 (integer overflow)."""
    for value in ("9223372036854775808", "2147483648", "-9223372036854775809",
                  "9" * 5000):
        for name in ("minRam", "minDisk"):
            resp = await api.request("GET", f"/compute/v2.1/flavors?{name}={value}")
            assert resp.status_code == 400, (name, value[:30], resp.text)
            assert f"Invalid {name} filter" in resp.text
    resp = await api.request("GET", "/compute/v2.1/flavors?minRam=2147483647")
    assert resp.status_code == 200


async def test_body_integers_past_the_database_range_are_400(api: Api) -> None:
    flavor = {"name": "big", "vcpus": 1, "disk": 1}
    for ram in (2**63, 2**64 - 1, 2**31, "9223372036854775808"):
        resp = await api.request("POST", "/compute/v2.1/flavors", user="admin",
                                 json={"flavor": {**flavor, "ram": ram}})
        assert resp.status_code == 400, (ram, resp.text)
        assert "is greater than the maximum of" in resp.text
    resp = await api.request("POST", TOKENS, json={"auth": {"x": 2**63}})
    assert resp.status_code == 400
    assert "9223372036854775808 is greater than the maximum of 9223372036854775807" \
        in resp.text


async def test_nul_in_body_path_and_query_is_400(api: Api) -> None:
    server = await boot(api)
    sid = server["id"]
    cases = [("POST", f"{S}/{sid}/metadata", {"metadata": {"k": "a\x00b"}}),
             ("PUT", f"{S}/{sid}", {"server": {"name": "a\x00b"}}),
             ("POST", "/image/v2/images", {"name": "a\x00b"}),
             ("POST", TOKENS, {"auth": {"identity": {"methods": ["password"], "password": {
                 "user": {"name": "demo\x00", "domain": {"id": "default"},
                          "password": "demo"}}}}})]
    for method, path, body in cases:
        resp = await api.request(method, path, json=body)
        assert resp.status_code == 400, (path, resp.text)
        assert "NUL characters are not allowed" in resp.text or "invalid 'name'" in resp.text
    for path in (f"{S}/{sid}/tags/a%00b", "/compute/v2.1/flavors/1%00",
                 f"{S}?name=a%00b", "/image/v2/images?name=a%00"):
        resp = await api.request("GET" if "tags" not in path else "PUT", path)
        assert resp.status_code == 400, (path, resp.text)
        assert "NUL characters are not allowed" in resp.text


# --- content types ---

async def test_compute_body_with_a_non_json_content_type_is_415(api: Api) -> None:
    """Was: any Content-Type read as JSON. Nova: 415 for any type but its JSON ones;
    none, an empty one and text/plain (old WSGI servers' default) count as none."""
    body = b'{"server": {"name": "x"}}'
    for ctype in ("text/html", "application/xml", "application/x-www-form-urlencoded",
                  "multipart/form-data; boundary=x"):
        resp = await api.request("POST", S, content=body, headers={"Content-Type": ctype})
        assert resp.status_code == 415, (ctype, resp.text)
        assert resp.json() == {"badMediaType": {"code": 415,
                                                "message": "Unsupported Content-Type"}}
    accepted: list[str | None] = ["application/json", "application/json; charset=UTF-8",
                                  "Application/JSON", "application/vnd.openstack.compute+json",
                                  "text/plain", "", None]
    for accepted_type in accepted:
        headers = {"Content-Type": accepted_type} if accepted_type is not None else {}
        resp = await api.request("POST", S, content=body, headers=headers)
        assert resp.status_code == 400, (accepted_type, resp.text)  # read, validated
        assert "flavorRef" in resp.text or "required" in resp.text, resp.text


async def test_identity_body_with_a_non_json_content_type_is_refused(api: Api) -> None:
    """Keystone answers 400 (its ValidationError) for a body not declared JSON, and
    reads a body with no Content-Type as JSON."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"id": "default"}, "password": "demo"}}}}}
    import orjson
    for ctype in ("text/plain", "text/html", "application/x-www-form-urlencoded"):
        resp = await api.client.post(TOKENS, content=orjson.dumps(body),
                                     headers={"Content-Type": ctype})
        assert resp.status_code == 400, (ctype, resp.text)
        assert resp.json()["error"]["message"].startswith(
            "Expecting to find application/json in Content-Type header")
    for headers in ({"Content-Type": "application/json; charset=utf-8"}, {}):
        resp = await api.client.post(TOKENS, content=orjson.dumps(body), headers=headers)
        assert resp.status_code == 201, (headers, resp.text)


async def test_image_patch_media_type_still_accepted(api: Api) -> None:
    resp = await api.request("POST", "/image/v2/images", json={"name": "p"})
    image_id = resp.json()["id"]
    resp = await api.request(
        "PATCH", f"/image/v2/images/{image_id}",
        content=b'[{"op": "replace", "path": "/name", "value": "q"}]',
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "q"


# --- names ---

_BAD_NAMES = ["a\x07b", "a\x00b", "tab\tinside", "a\x7fb", "a\x85b", "zero\u200bwidth",
              "line\u2028sep", "\u00a0leading", "trailing\u3000", " lead", "trail ",
              "astral\U0001f600"]


@pytest.mark.parametrize("name", _BAD_NAMES)
async def test_control_characters_in_a_server_name_are_400(api: Api, name: str) -> None:
    """Was: stored. Nova's `name`: printable characters, no leading or trailing
    whitespace."""
    resp = await api.request("POST", S, version="2.37", json={"server": {
        "name": name, "flavorRef": "1", "imageRef": "x", "networks": "none"}})
    assert resp.status_code == 400, resp.text
    if "\x00" not in name:
        assert resp.json()["badRequest"]["message"] == (
            "An invalid 'name' value was provided. The name must be: printable "
            "characters. Can not start or end with whitespace.")


async def test_printable_unicode_names_are_accepted(api: Api) -> None:
    server = await boot(api, name="nom à l'été\u00a0№5 日本")
    assert server["name"] == "nom à l'été\u00a0№5 日本"


async def test_control_characters_refused_in_other_names(api: Api) -> None:
    server = await boot(api)
    sid = server["id"]
    cases = [
        ("admin", "POST", "/compute/v2.1/flavors",
         {"flavor": {"name": "f\x01", "ram": 1, "vcpus": 1, "disk": 0}}),
        ("demo", "POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "k\x1b"}}),
        ("demo", "POST", "/compute/v2.1/os-server-groups",
         {"server_group": {"name": "g\x0a", "policies": ["affinity"]}}),
        ("admin", "POST", "/compute/v2.1/os-aggregates", {"aggregate": {"name": "a\x1f"}}),
        ("admin", "POST", "/compute/v2.1/os-aggregates",
         {"aggregate": {"name": "a", "availability_zone": "z\x1f"}}),
        ("demo", "PUT", f"{S}/{sid}", {"server": {"name": "x\x9b"}}),
        ("demo", "POST", f"{S}/{sid}/action", {"createImage": {"name": "i\x02"}}),
        ("demo", "POST", f"{S}/{sid}/metadata", {"metadata": {"k\x01": "v"}}),
        ("demo", "PUT", f"{S}/{sid}/metadata/k", {"meta": {"k": "\x00"}}),
    ]
    for user, method, path, body in cases:
        resp = await api.request(method, path, user=user, json=body)
        assert resp.status_code == 400, (path, body, resp.text)


async def test_metadata_keys_follow_novas_pattern(api: Api) -> None:
    server = await boot(api)
    path = f"{S}/{server['id']}/metadata"
    resp = await api.request("POST", path, json={"metadata": {"a-b_c:d. e": "\x01ok"}})
    assert resp.status_code == 200, resp.text  # Nova leaves values' characters alone
    resp = await api.request("POST", path, json={"metadata": {"a/b": "v"}})
    assert resp.status_code == 400


# --- timeouts and disconnects on a real socket ---

async def test_idle_client_is_disconnected(served: Served) -> None:
    """Was: never cut off."""
    def run() -> float | None:
        with served.connect() as sock:
            return _closed_within(sock, 5)
    took = await asyncio.to_thread(run)
    assert took is not None and took < 3, took


async def test_one_byte_a_second_header_client_is_disconnected(served: Served) -> None:
    """Slowloris: headers never complete; cut off after client_header_timeout."""
    def run() -> float | None:
        request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        started = time.monotonic()
        with served.connect() as sock:
            try:
                for byte in request:
                    sock.sendall(bytes([byte]))
                    if select.select([sock], [], [], 0.25)[0] and not sock.recv(1):
                        return time.monotonic() - started
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
        return None
    took = await asyncio.to_thread(run)
    assert took is not None and took < 3, took


async def test_kept_alive_client_gets_a_new_header_deadline(served: Served) -> None:
    def run() -> tuple[int | None, int | None, float | None]:
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            first = _whole_status(sock)
            time.sleep(1.5)  # idle past the header timeout, under keep-alive's 2 s
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            second = _whole_status(sock)
            return first, second, _closed_within(sock, 5)
    first, second, closed = await asyncio.to_thread(run)
    assert (first, second) == (200, 200)
    assert closed is not None  # keep-alive's timeout


async def test_stalled_body_is_cut_off_and_logged_as_a_disconnect(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    def run() -> float | None:
        with served.connect() as sock:
            sock.sendall(f"POST {TOKENS} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         "application/json\r\nContent-Length: 1000\r\n\r\n{\"auth\"".encode())
            return _closed_within(sock, 6)
    took = await asyncio.to_thread(run)
    assert took is not None and 1.5 < took < 4, took
    await asyncio.sleep(0.2)
    assert any("Client disconnected before sending the whole request: POST "
               f"{TOKENS} (request req-" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_client_dropping_mid_body_is_logged_as_a_disconnect(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    """Was: a 500 with a traceback."""
    caplog.set_level(logging.INFO)

    def run() -> None:  # the token route reads its body without a token
        with served.connect() as sock:
            sock.sendall(f"POST {TOKENS} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         "application/json\r\nContent-Length: 5000\r\n\r\n{\"a\"".encode())
            time.sleep(0.2)
    await asyncio.to_thread(run)
    lines: list[logging.LogRecord] = []
    for _ in range(50):
        lines = [r for r in caplog.records if "Client disconnected" in r.getMessage()]
        if lines:
            break
        await asyncio.sleep(0.05)
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
