"""The metadata service as guests use it: over HTTP, identified by source address."""

from __future__ import annotations

import asyncio
import base64
import select
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from novalet import config
from novalet.metadata.app import create_app
from novalet.metadata.content import InstanceMetadata
from novalet.metadata.lookup import StaticLookup
from novalet.metadata.service import MetadataServer, MetadataServiceError, serve
from novalet.network.model import Vif

WEB_UUID = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
DB_UUID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
WEB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIweb web@example"
DB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIdb db@example"


def vif(vif_id: str, mac: str, ip: str, dhcp: bool = True) -> Vif:
    return Vif(id=vif_id, address=mac, network_id="net-1", network_label="private",
               bridge="br100", fixed_ip=ip, cidr="10.0.0.0/24", gateway="10.0.0.1",
               dns=["10.0.0.1"], dhcp=dhcp)


def instances() -> list[InstanceMetadata]:
    web = InstanceMetadata(
        uuid=WEB_UUID, name="web", hostname="web", project_id="p1",
        public_keys={"web-key": WEB_KEY}, user_data=b"#cloud-config\nhostname: web\n",
        meta={"role": "web"}, vifs=[vif("11111111-aaaa-4bbb-8ccc-000000000001",
                                        "fa:16:3e:00:00:01", "10.0.0.5")],
        image_id="1f2e3d4c-0000-4000-8000-000000000000", instance_type="m1.small",
        security_groups=["default"])
    db = InstanceMetadata(
        uuid=DB_UUID, name="db", hostname="db", project_id="p2",
        public_keys={"db-key": DB_KEY}, user_data=None,
        vifs=[vif("22222222-aaaa-4bbb-8ccc-000000000002", "fa:16:3e:00:00:02", "10.0.0.6",
                  dhcp=False)])
    return [web, db]


@pytest.fixture
def lookup() -> StaticLookup:
    return StaticLookup(instances())


@pytest.fixture
def app(lookup: StaticLookup) -> Starlette:
    return create_app(lookup)


Guest = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def guest(app: Starlette) -> AsyncIterator[Guest]:
    """An HTTP client whose requests come from the given guest address."""
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 51234))
        made = httpx.AsyncClient(transport=transport, base_url="http://169.254.169.254")
        clients.append(made)
        return made

    yield make
    for made in clients:
        await made.aclose()


async def test_each_guest_gets_its_own_meta_data(guest: Guest) -> None:
    web = (await guest("10.0.0.5").get("/openstack/latest/meta_data.json")).json()
    db = (await guest("10.0.0.6").get("/openstack/2018-08-27/meta_data.json")).json()
    assert web["uuid"] == WEB_UUID and web["public_keys"] == {"web-key": WEB_KEY}
    assert web["meta"] == {"role": "web"} and web["project_id"] == "p1"
    assert db["uuid"] == DB_UUID and db["public_keys"] == {"db-key": DB_KEY}
    assert len(base64.b64decode(web["random_seed"])) == 512


async def test_an_unknown_address_gets_404_and_nothing_of_anyone(guest: Guest) -> None:
    for path in ("/openstack/latest/meta_data.json", "/latest/meta-data/", "/",
                 "/latest/user-data"):
        resp = await guest("10.0.0.99").get(path)
        assert resp.status_code == 404
        assert "No instance of this cloud has the address 10.0.0.99" in resp.text
        assert WEB_UUID not in resp.text and DB_UUID not in resp.text


async def test_cloud_init_openstack_discovery(guest: Guest) -> None:
    web = guest("10.0.0.5")
    versions = (await web.get("/openstack")).text.split("\n")
    assert "2018-08-27" in versions and versions[-1] == "latest"
    listing = (await web.get("/openstack/2018-08-27/")).text.split("\n")
    assert {"meta_data.json", "user_data", "network_data.json", "vendor_data.json",
            "vendor_data2.json", "password"} == set(listing)
    assert (await web.get("/openstack/2018-08-27/user_data")).content.startswith(
        b"#cloud-config")
    assert (await web.get("/openstack/2018-08-27/vendor_data.json")).json() == {}
    assert (await web.get("/openstack/2018-08-27/vendor_data2.json")).json() == {}


async def test_user_data_is_404_when_the_instance_has_none(guest: Guest) -> None:
    db = guest("10.0.0.6")
    for path in ("/openstack/latest/user_data", "/latest/user-data"):
        resp = await db.get(path)
        assert resp.status_code == 404 and "no user" in resp.text
    assert "user_data" not in (await db.get("/openstack/latest")).text.split("\n")


async def test_network_data(guest: Guest) -> None:
    web = (await guest("10.0.0.5").get("/openstack/latest/network_data.json")).json()
    assert web["links"][0]["ethernet_mac_address"] == "fa:16:3e:00:00:01"
    assert web["networks"][0]["type"] == "ipv4_dhcp"
    db = (await guest("10.0.0.6").get("/openstack/latest/network_data.json")).json()
    static = db["networks"][0]
    assert static["type"] == "ipv4" and static["ip_address"] == "10.0.0.6"
    assert static["netmask"] == "255.255.255.0"
    assert static["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0",
                                 "gateway": "10.0.0.1"}]
    assert db["services"] == [{"type": "dns", "address": "10.0.0.1"}]


async def test_the_guest_posts_its_password_once(guest: Guest, lookup: StaticLookup) -> None:
    web = guest("10.0.0.5")
    assert (await web.get("/openstack/latest/password")).text == ""
    first = await web.post("/openstack/latest/password", content=b"ZW5jcnlwdGVk")
    assert first.status_code == 200
    assert (await web.get("/openstack/2013-04-04/password")).text == "ZW5jcnlwdGVk"
    again = await web.post("/openstack/latest/password", content=b"b3RoZXI=")
    assert again.status_code == 409 and "already has a password" in again.text
    assert lookup.get(WEB_UUID).password == "ZW5jcnlwdGVk"
    # The other guest's password is its own business.
    assert (await guest("10.0.0.6").get("/openstack/latest/password")).text == ""


async def test_a_password_over_256_bytes_is_refused(guest: Guest, lookup: StaticLookup) -> None:
    resp = await guest("10.0.0.5").post("/openstack/latest/password", content=b"x" * 300)
    assert resp.status_code == 400 and lookup.get(WEB_UUID).password is None


async def test_ec2_listings(guest: Guest) -> None:
    web = guest("10.0.0.5")
    root = (await web.get("/")).text.split("\n")
    assert root[0] == "1.0" and "2009-04-04" in root and root[-1] == "latest"
    assert (await web.get("/latest/")).text.split("\n") == ["dynamic/", "meta-data/",
                                                            "user-data"]
    meta = (await web.get("/2009-04-04/meta-data/")).text.split("\n")
    for entry in ("ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping/",
                  "hostname", "instance-action", "instance-id", "instance-type",
                  "local-hostname", "local-ipv4", "placement/", "public-hostname",
                  "public-ipv4", "public-keys/", "reservation-id", "security-groups"):
        assert entry in meta
    assert (await web.get("/latest/meta-data/instance-id")).text == "i-6a7b8c9d"
    assert (await web.get("/latest/meta-data/instance-type")).text == "m1.small"
    assert (await web.get("/latest/meta-data/local-ipv4")).text == "10.0.0.5"
    assert (await web.get("/latest/meta-data/placement/availability-zone")).text == "nova"
    assert (await web.get("/latest/meta-data/block-device-mapping/")).text == "ami\nroot"
    assert (await web.get("/latest/meta-data/public-keys/")).text == "0=web-key"
    assert (await web.get("/latest/meta-data/public-keys/0/")).text == "openssh-key"
    assert (await web.get("/latest/meta-data/public-keys/0/openssh-key")).text == WEB_KEY
    assert (await web.get("/latest/user-data")).text == "#cloud-config\nhostname: web\n"
    document = (await web.get("/latest/dynamic/instance-identity/document")).json()
    assert document["instanceId"] == "i-6a7b8c9d"
    db = guest("10.0.0.6")
    assert (await db.get("/latest/meta-data/public-keys/0/openssh-key")).text == DB_KEY


async def test_an_instance_that_is_deleted_is_no_longer_served(
        guest: Guest, lookup: StaticLookup) -> None:
    lookup.remove(WEB_UUID)
    assert (await guest("10.0.0.5").get("/openstack/latest/meta_data.json")).status_code == 404


# --- the real server ---------------------------------------------------------------

def conf_for(tmp_path: Path, **values: str) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path))
    for name, value in values.items():
        conf.set("metadata", name, value)
    return conf


async def test_the_server_answers_on_its_socket_and_ignores_forwarded_for(
        tmp_path: Path) -> None:
    loopback = InstanceMetadata(uuid=WEB_UUID, name="web", hostname="web",
                                local_ipv4="127.0.0.1")
    other = instances()[1]
    vendor = tmp_path / "vendor.json"
    vendor.write_text('{"cloud": "novalet"}')
    server = MetadataServer(conf_for(tmp_path, vendordata_json=str(vendor)),
                            StaticLookup([loopback, other]), "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            # uvicorn's own proxy-header handling is off: 127.0.0.1 can't claim 10.0.0.6.
            meta = await http.get("/openstack/latest/meta_data.json",
                                  headers={"X-Forwarded-For": "10.0.0.6"})
            vendor_data = await http.get("/openstack/latest/vendor_data.json")
    finally:
        await server.stop()
    assert meta.status_code == 200 and meta.json()["uuid"] == WEB_UUID
    assert meta.headers["content-type"] == "application/json"
    assert vendor_data.json() == {"cloud": "novalet"}


async def test_serve_runs_until_cancelled(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loopback = InstanceMetadata(uuid=WEB_UUID, name="web", hostname="web",
                                local_ipv4="127.0.0.1")
    task = asyncio.create_task(serve(conf_for(tmp_path), StaticLookup([loopback]),
                                     "127.0.0.1", port))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(200):
                try:
                    resp = await http.get("/latest/meta-data/hostname")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
            assert resp.text == "web"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with socket.socket() as again:   # the port is free again
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


async def test_serve_says_when_it_cannot_listen(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetadataServiceError, match=f"cannot listen on 127.0.0.1:{port}"):
            await serve(conf_for(tmp_path), StaticLookup(), "127.0.0.1", port)


async def test_a_bad_trusted_proxy_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="trusted_proxies"):
        MetadataServer(conf_for(tmp_path, trusted_proxies="10.0.0.1, bogus"), StaticLookup())


# --- untrusted guests on a real socket: timeouts and bodies (issue 14, item 1) ---

@pytest.fixture
async def served_metadata(tmp_path: Path) -> AsyncIterator[int]:
    """The metadata server on a free port with 1 s header and 2 s body timeouts,
    serving 127.0.0.1 as an instance: its port."""
    conf = conf_for(tmp_path)
    conf.set("wsgi", "client_header_timeout", 1.0)
    conf.set("wsgi", "client_socket_timeout", 2.0)
    loopback = InstanceMetadata(uuid=WEB_UUID, name="web", hostname="web",
                                local_ipv4="127.0.0.1")
    server = MetadataServer(conf, StaticLookup([loopback]), "127.0.0.1", 0)
    await server.start()
    try:
        yield server.port
    finally:
        await server.stop()


def _closed_after(sock: socket.socket, seconds: float) -> tuple[bytes, float | None]:
    """What the server sent on `sock` until it closed it, and after how many seconds
    (None if it was still open after `seconds`)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    data = b""
    try:
        while piece := sock.recv(65536):
            data += piece
    except TimeoutError:
        return data, None
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


@pytest.mark.serial  # times the watchdog
async def test_metadata_server_cuts_off_an_idle_guest(served_metadata: int) -> None:
    """Was: uvicorn's plain protocol, where a connection that sends nothing is kept."""
    def run() -> float | None:
        with socket.create_connection(("127.0.0.1", served_metadata), timeout=10) as sock:
            return _closed_after(sock, 6)[1]
    took = await asyncio.to_thread(run)
    assert took is not None and 0.8 < took < 3, took


@pytest.mark.serial  # times the watchdog
async def test_metadata_server_cuts_off_a_slow_header_guest(served_metadata: int) -> None:
    """Slowloris: a byte every 0.2 s keeps the connection busy but never ends the headers."""
    def run() -> float | None:
        request = b"GET /latest/meta-data/hostname HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 60
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", served_metadata), timeout=10) as sock:
            try:
                for byte in request:
                    sock.sendall(bytes([byte]))
                    if select.select([sock], [], [], 0.2)[0] and not sock.recv(1):
                        return time.monotonic() - started
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
        return None
    took = await asyncio.to_thread(run)
    assert took is not None and 0.8 < took < 3, took


async def test_metadata_server_keeps_a_prompt_guest(served_metadata: int) -> None:
    """The watchdogs leave a well-behaved guest alone: two requests on one connection."""
    def run() -> list[bytes]:
        answers = []
        with socket.create_connection(("127.0.0.1", served_metadata), timeout=10) as sock:
            for _ in range(2):
                sock.sendall(b"GET /latest/meta-data/hostname HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while not data.endswith(b"web"):
                    data += sock.recv(4096)
                answers.append(data)
                time.sleep(0.6)
        return answers
    answers = await asyncio.to_thread(run)
    assert [a.split(b"\r\n")[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 2


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/latest/meta-data/hostname", b"200"),
    ("POST", "/openstack/latest/meta_data.json", b"405"),
    ("POST", "/openstack/latest/password", b"400"),
])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_metadata_server_never_reads_a_100mb_body(
        served_metadata: int, method: str, path: str, status: bytes, chunked: bool) -> None:
    """A guest's body the service does not read (any but a password's 256 bytes) is
    answered, then the connection is closed: the rest is never read."""
    def run() -> tuple[bytes, int]:
        framing = ("Transfer-Encoding: chunked" if chunked
                   else f"Content-Length: {100 * 1024 * 1024}")
        sent = 0
        with socket.create_connection(("127.0.0.1", served_metadata), timeout=10) as sock:
            sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
            piece = b"p" * 65536
            try:
                while sent < 100 * 1024 * 1024 and not select.select([sock], [], [], 0)[0]:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass
            data, took = _closed_after(sock, 5)
            assert took is not None, "the connection stayed open"
            return data, sent
    data, sent = await asyncio.to_thread(run)
    assert data.startswith(b"HTTP/1.1 " + status), data[:200]
    assert b"connection: close" in data.lower()
    assert sent < 20 * 1024 * 1024, f"the server read {sent >> 20} MB of a body it ignores"
