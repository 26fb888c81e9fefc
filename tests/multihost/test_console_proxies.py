"""Console proxies as processes of their own (`novalet novncproxy`, `novalet
serialproxy`, `novalet xvpvncproxy`): tokens checked by the conductor over
RabbitMQ, relayed to a fake compute host's consoles in another process."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from novalet.console import vnc_auth
from tests.multihost.conftest import Cloud, deployment

pytestmark = pytest.mark.integration
PROXIES = ("novncproxy", "serialproxy", "xvpvncproxy")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str]
          ) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("consoles")
    for dep, database in deployment(root, backing, ["compute-1"]):
        for name in PROXIES:
            dep.start(name)
        yield Cloud(dep, database)


def console(cloud: Cloud, server_id: str, protocol: str, kind: str) -> str:
    resp = cloud.api("POST", f"/servers/{server_id}/remote-consoles", version="2.6",
                     json={"remote_console": {"protocol": protocol, "type": kind}})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["remote_console"]["url"])


def booted(cloud: Cloud) -> str:
    (server_id,) = cloud.boot("console")
    assert cloud.wait_settled([server_id])[server_id]["status"] == "ACTIVE"
    return server_id


def test_novnc_proxy_process_relays_the_compute_hosts_display(cloud: Cloud) -> None:
    server_id = booted(cloud)
    url = console(cloud, server_id, "vnc", "novnc")
    parts = urlsplit(url)
    ws_path = unquote(parse_qs(parts.query)["path"][0])
    with connect(f"ws://{parts.netloc}/{ws_path.lstrip('/')}", open_timeout=30) as ws:
        buffer = b""
        while len(buffer) < 12:
            message = ws.recv(timeout=30)
            assert isinstance(message, bytes)
            buffer += message
        assert buffer[:12] == b"RFB 003.008\n"
    with pytest.raises(InvalidStatus) as refused:
        with connect(f"ws://{parts.netloc}/?token=unknown", open_timeout=30):
            pass
    assert refused.value.response.status_code == 403
    log = cloud.d.tail(cloud.d.processes["novncproxy@controller"], 200)
    assert f"opens the novnc console of instance {server_id}" in log


def test_serial_proxy_process_echoes_through_the_fake_console(cloud: Cloud) -> None:
    server_id = booted(cloud)
    url = console(cloud, server_id, "serial", "serial")
    with connect(url, open_timeout=30) as ws:
        assert ws.recv(timeout=30) == f"fake-serial {server_id}\n".encode()
        ws.send(b"hello\n")
        assert ws.recv(timeout=30) == b"hello\n"


def test_native_vnc_proxy_process_checks_the_password_through_the_conductor(
        cloud: Cloud) -> None:
    server_id = booted(cloud)
    url = console(cloud, server_id, "vnc", "xvpvnc")
    parts = urlsplit(url)
    password = parse_qs(parts.query)["VncPassword"][0]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        stream = sock.makefile("rwb")
        assert stream.read(12) == b"RFB 003.008\n"
        stream.write(b"RFB 003.008\n")
        stream.flush()
        assert stream.read(2) == b"\x01\x02"
        stream.write(b"\x02")
        stream.flush()
        stream.write(vnc_auth.response(password, stream.read(16)))
        stream.flush()
        assert stream.read(4) == b"\0\0\0\0"
        stream.write(b"\x01")
        stream.flush()
        header = stream.read(24)
        assert stream.read(struct.unpack(">I", header[20:])[0]) == server_id.encode()
