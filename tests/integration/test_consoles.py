"""Guest consoles end to end: a QEMU-backed `novalet up`, console URLs from the real
`openstack` CLI, and real clients through the proxies: headless Chromium on noVNC
(typing a command the guest runs) and spice-html5, vncdotool through the native VNC
proxy, the serial websocket across a reboot, the SPICE link handshake; and the
refusals (unknown tokens, tokens of deleted servers).

NOVALET_DOCS_SCREENSHOT=1 also saves the noVNC page to docs/images/novnc-console.png.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration import console_clients as clients
from tests.integration.conftest import RunningCloud, keystone_token, qemu_cloud

pytestmark = pytest.mark.integration

CONF = """[DEFAULT]
compute_driver = qemu
[network]
fixed_range = 10.237.0.0/24
flat_network_bridge = nvbrcons
[qemu]
virt_type = auto
reboot_timeout = 20
[vnc]
enabled = true
novncproxy_port = 0
xvpvncproxy_port = 0
[spice]
enabled = true
html5proxy_port = 0
[serial_console]
enabled = true
serialproxy_port = 0
"""
SERVERS = ("con1", "con2")  # con1 is looked at; con2 is the other instance, then deleted
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "novnc-console.png"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path
          ) -> Iterator[RunningCloud]:
    with qemu_cloud(tmp_path_factory.mktemp("console-cloud"), guest_image, CONF,
                    ["nvbrcons"]) as running:
        yield running


@pytest.fixture(scope="module")
def servers(cloud: RunningCloud) -> dict[str, str]:
    """Both servers booted (in parallel) to their shells: name -> uuid."""
    uuids = {name: cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                        "novalet-tiny", name)["id"]  # type: ignore[index]
             for name in SERVERS}
    for name in SERVERS:
        wait_console(cloud, name, "NOVALET-GUEST-READY")
    return uuids


def wait_console(cloud: RunningCloud, name: str, pattern: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = cloud.openstack("console", "log", "show", name).stdout
        if re.search(pattern, text):
            return text
        time.sleep(1)
    raise AssertionError(f"{pattern!r} never appeared on {name}'s console log:\n"
                         f"{text[-3000:]}\n--- server log ---\n{cloud.tail(60)}")


def console_url(cloud: RunningCloud, server: str, kind: str) -> str:
    """`openstack console url show --<kind> SERVER`'s URL."""
    shown = cloud.openstack_json("console", "url", "show", f"--{kind}", server)
    return str(shown["url"])  # type: ignore[index]


def query(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


def novnc_websocket(page_url: str) -> str:
    """The websocket noVNC opens for its page URL (?path=%3Ftoken%3D… -> ws://…/?token=…)."""
    return clients.ws_url_of(page_url) + query(page_url, "path").lstrip("/")


def test_novnc_in_chromium_shows_the_guest_and_types_into_it(
        cloud: RunningCloud, servers: dict[str, str]) -> None:
    url = console_url(cloud, "con1", "novnc")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/vnc_lite\.html\?path=%3Ftoken%3D\S+", url), url
    word = f"NOVNC-{secrets.token_hex(4).upper()}"
    with clients.chromium() as browser:
        page = browser.new_page()
        novnc = clients.NoVnc(page)
        novnc.open(url)
        assert novnc.status.startswith("Connected to QEMU"), novnc.status
        shown = novnc.wait_canvas(lambda png: not clients.is_blank(png))
        novnc.type_line(f"echo {word} > /dev/ttyS0")
        novnc.wait_canvas(lambda png: clients.differs(png, shown))
        # The guest ran it: the word is on its serial port, hence in the console log.
        wait_console(cloud, "con1", word, timeout=30)
        if os.environ.get("NOVALET_DOCS_SCREENSHOT") == "1":
            time.sleep(1)  # let the last updates reach the canvas
            clients.save_png(page.screenshot(), SCREENSHOT)


def test_native_vnc_proxy_takes_the_token_as_the_vnc_password(
        cloud: RunningCloud, servers: dict[str, str], tmp_path: Path) -> None:
    url = console_url(cloud, "con1", "xvpvnc")
    parts = urlsplit(url)
    assert parts.scheme == "vnc" and parts.hostname == "127.0.0.1", url
    host, port, token = parts.hostname, int(parts.port or 0), query(url, "VncPassword")
    assert len(token) == 8

    captured = clients.vncdotool_capture(host, port, token, tmp_path / "screen.png")
    assert captured.returncode == 0, captured.stdout + captured.stderr
    png = (tmp_path / "screen.png").read_bytes()
    assert clients.colours(png) > 1, "vncdotool captured a blank screen"

    accepted = clients.rfb_handshake_tcp(host, port, token)
    assert accepted.accepted and accepted.name.startswith("QEMU"), accepted
    refused = clients.rfb_handshake_tcp(host, port, "wrong-pw")
    assert not refused.accepted and "Authentication failed" in refused.reason, refused
    wrong = clients.vncdotool_capture(host, port, "nottoken", tmp_path / "never.png")
    assert wrong.returncode == 1 and "AuthenticationError" in wrong.stdout, wrong
    assert not (tmp_path / "never.png").exists()


def test_spice_link_handshake_and_spice_html5_through_the_proxy(
        cloud: RunningCloud, servers: dict[str, str]) -> None:
    url = console_url(cloud, "con1", "spice")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/spice_auto\.html\?token=\S+", url), url
    websocket = clients.ws_url_of(url, "websockify")
    # spice_auto.html keeps the token in a cookie for the websocket.
    link = clients.spice_link_websocket(websocket, query(url, "token"))
    assert link.magic == b"REDQ" and link.version == (2, 2)
    assert link.error == 0 and link.public_key is not None
    assert link.public_key.key_size == 1024
    assert link.result == 0, "QEMU did not accept the (empty) SPICE ticket"
    assert clients.websocket_refusal(websocket, token_cookie="not-a-token") == "HTTP 403"

    with clients.chromium() as browser:
        page = browser.new_page()
        messages = clients.open_spice_html5(page, url)
        assert f"Connected to {websocket}" in messages
        assert clients.colours(clients.spice_canvas(page)) > 1


def test_serial_console_shows_a_reboot_and_takes_input(
        cloud: RunningCloud, servers: dict[str, str]) -> None:
    url = console_url(cloud, "con1", "serial")
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/\?token=\S+", url), url
    serial = clients.SerialConsole(url)
    try:
        serial.send(b"\n")
        serial.read_until(r":~\$ ", timeout=15)  # the guest's root shell answers
        cloud.openstack("server", "reboot", "con1")  # soft: ACPI, then QEMU starts again
        serial.read_until(r"Linux version \S+", timeout=120)
        serial.read_until(rf"NOVALET-GUEST-READY uuid={servers['con1']}", timeout=120)
        for _ in range(10):  # until the shell on ttyS0 is up to read it
            serial.send(b"echo serial-$((6*7))\n")
            try:
                serial.read_until(r"serial-42\r?\n", timeout=5)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"the guest never ran our command:\n{serial.text[-2000:]}")
    finally:
        serial.close()


def test_console_auth_token_details_are_for_admins(
        cloud: RunningCloud, servers: dict[str, str]) -> None:
    token = query(console_url(cloud, "con1", "spice"), "token")
    shown = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{cloud.port}", timeout=30) as client:
        for user in ("admin", "demo"):
            shown[user] = client.get(f"/compute/v2.1/os-console-auth-tokens/{token}",
                                     headers={"X-Auth-Token": keystone_token(client, user),
                                              "OpenStack-API-Version": "compute 2.31"})
    assert shown["demo"].status_code == 403, shown["demo"].text
    assert shown["admin"].status_code == 200, shown["admin"].text
    console = shown["admin"].json()["console"]
    assert console["instance_uuid"] == servers["con1"]
    assert console["host"] == "127.0.0.1" and console["port"] > 0


def test_tokens_open_only_their_instance_and_die_with_it(
        cloud: RunningCloud, servers: dict[str, str]) -> None:
    pages = {name: console_url(cloud, name, "novnc") for name in SERVERS}
    novnc = {name: novnc_websocket(url) for name, url in pages.items()}
    serial = console_url(cloud, "con2", "serial")
    names = {name: clients.rfb_handshake_websocket(ws) for name, ws in novnc.items()}
    assert all(result.accepted for result in names.values()), names
    assert names["con1"].name != names["con2"].name, names
    assert clients.websocket_refusal(serial) is None  # stays open while con2 lives

    unknown = clients.ws_url_of(novnc["con1"]) + f"?token={secrets.token_urlsafe(24)}"
    assert clients.websocket_refusal(unknown) == "HTTP 403"
    # A noVNC token is no good at the serial proxy.
    assert clients.websocket_refusal(clients.ws_url_of(serial) + "?token="
                                     + query(novnc["con1"], "token")) == "HTTP 403"

    cloud.openstack("server", "delete", "--wait", "con2")
    assert clients.websocket_refusal(novnc["con2"]) == "HTTP 403"
    assert clients.websocket_refusal(serial) == "HTTP 403"
    with clients.chromium() as browser:
        status = clients.NoVnc(browser.new_page()).open_refused(pages["con2"])
    assert status in ("Disconnected", "Something went wrong, connection is closed"), status
    assert clients.rfb_handshake_websocket(novnc["con1"]).name == names["con1"].name
