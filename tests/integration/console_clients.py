"""Console clients for the integration tests: headless Chromium (Debian's, through
Playwright) on the noVNC and spice-html5 pages, the SPICE link handshake, a serial
websocket reader, a minimal RFB handshake and pixel checks of screenshots."""

from __future__ import annotations

import io
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from PIL import Image, ImageChops
from playwright.sync_api import BrowserContext, Page, sync_playwright
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from novalet.console import vnc_auth

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium dials out at start and, on a
# closed network, its local connections get refused too.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


# --- Chromium ---------------------------------------------------------------------

@contextmanager
def chromium(width: int = 1024, height: int = 768) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile (no `playwright install`)."""
    with tempfile.TemporaryDirectory(prefix="novalet-chromium-") as profile, \
            sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        try:
            yield context
        finally:
            context.close()


# US layout: characters typed with Shift, by the key that carries them. QEMU takes
# the scancode (noVNC sends the key's `code`), so Shift must really be held down.
_SHIFTED = dict(zip('~!@#$%^&*()_+{}|:"<>?',
                    ["Backquote", "Digit1", "Digit2", "Digit3", "Digit4", "Digit5",
                     "Digit6", "Digit7", "Digit8", "Digit9", "Digit0", "Minus", "Equal",
                     "BracketLeft", "BracketRight", "Backslash", "Semicolon", "Quote",
                     "Comma", "Period", "Slash"], strict=True))


class NoVnc:
    """noVNC's vnc_lite.html in a Chromium page."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, url: str, timeout: float = 30) -> None:
        """Load the page and wait until noVNC says it is connected to the server."""
        self.page.goto(url)
        self.page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('Connected')",
            timeout=timeout * 1000)

    def open_refused(self, url: str, timeout: float = 30) -> str:
        """Load the page whose websocket the proxy should refuse; noVNC's status
        once it has given up (anything but connected)."""
        self.page.goto(url)
        self.page.wait_for_function(
            "!['Loading', 'Connecting'].includes(document.getElementById('status').textContent)",
            timeout=timeout * 1000)
        return self.status

    @property
    def status(self) -> str:
        return self.page.inner_text("#status")

    def canvas_png(self) -> bytes:
        return self.page.locator("#screen canvas").screenshot()

    def wait_canvas(self, ready: Callable[[bytes], bool], timeout: float = 30) -> bytes:
        """The canvas once `ready(png)` holds (polled), else an AssertionError."""
        deadline = time.monotonic() + timeout
        png = self.canvas_png()
        while not ready(png):
            if time.monotonic() > deadline:
                raise AssertionError(f"the noVNC canvas never got ready ({self.status})")
            time.sleep(0.3)
            png = self.canvas_png()
        return png

    def type_line(self, text: str) -> None:
        """Type `text` then Enter into the guest (the canvas takes the keyboard)."""
        self.page.locator("#screen canvas").click()
        for char in text:
            if char in _SHIFTED:
                self.page.keyboard.press(f"Shift+{_SHIFTED[char]}")
            elif char.isupper():
                self.page.keyboard.press(f"Shift+Key{char}")
            else:
                self.page.keyboard.press("Space" if char == " " else char)
        self.page.keyboard.press("Enter")


def open_spice_html5(page: Page, url: str, timeout: float = 30) -> str:
    """Load spice_auto.html; the text of its message area once it reports a
    connection (spice-html5 writes 'Connected to ws://…' there)."""
    page.goto(url)
    page.wait_for_function(
        "document.getElementById('message-div').textContent.includes('Connected to')",
        timeout=timeout * 1000)
    return page.inner_text("#message-div")


def spice_canvas(page: Page, timeout: float = 30) -> bytes:
    """spice-html5's display canvas once it shows something (not one colour)."""
    deadline = time.monotonic() + timeout
    canvas = page.locator("#spice-screen canvas").first
    while True:
        if canvas.count():
            png = canvas.screenshot()
            if not is_blank(png):
                return png
        if time.monotonic() > deadline:
            raise AssertionError("spice-html5 never drew the guest's display")
        time.sleep(0.3)


# --- screenshots --------------------------------------------------------------------

def colours(png: bytes) -> int:
    """How many distinct colours an image has (1 for a blank canvas)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    found = image.getcolors(maxcolors=1 << 24)
    return len(found) if found else 1 << 24


def is_blank(png: bytes) -> bool:
    return colours(png) <= 1


def differs(a: bytes, b: bytes) -> bool:
    """Whether two screenshots differ in any pixel (or in size)."""
    first = Image.open(io.BytesIO(a)).convert("RGB")
    second = Image.open(io.BytesIO(b)).convert("RGB")
    return first.size != second.size or ImageChops.difference(first, second).getbbox() is not None


# --- websockets -----------------------------------------------------------------------

BINARY = [Subprotocol("binary")]
"""What websockify's clients (noVNC, spice-html5) ask for."""

class ByteSocket:
    """A websocket as a byte stream (websockify frames are binary)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.ws.send(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        message = self.ws.recv(timeout=remaining)
        self.buffer += message if isinstance(message, bytes) else message.encode()

    def read_exact(self, count: int, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buffer) < count:
            self._fill(deadline)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_until(self, pattern: str, timeout: float = 30) -> str:
        """Everything read up to and including the first match of `pattern`
        (decoded leniently); an AssertionError with what came if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.buffer.decode(errors="replace")
            match = re.search(pattern, text)
            if match:
                self.buffer = text[match.end():].encode()
                return text[:match.end()]
            try:
                self._fill(deadline)
            except (TimeoutError, ConnectionClosed) as exc:
                raise AssertionError(f"{pattern!r} never came ({type(exc).__name__}); "
                                     f"got:\n{text[-3000:]}") from None

    def close(self) -> None:
        self.ws.close()


@contextmanager
def websocket(url: str, token_cookie: str | None = None) -> Iterator[ByteSocket]:
    """A websocket to a console proxy (as websockify's clients: subprotocol binary)."""
    headers = {"Cookie": f"token={token_cookie}"} if token_cookie else None
    ws = connect(url, subprotocols=BINARY, additional_headers=headers, open_timeout=15,
                 max_size=None, legacy=True)
    try:
        yield ByteSocket(ws)
    finally:
        ws.close()


class SerialConsole:
    """A serial console websocket that reconnects (same URL) when the proxy closes
    it: a reboot restarts QEMU, and with it the guest's serial port. `text` keeps
    everything read; read_until searches past the previous match."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: ByteSocket | None = None
        self.text = ""
        self.position = 0
        self.connections = 0

    def _connect(self, deadline: float) -> ByteSocket:
        while True:
            try:
                self.ws = ByteSocket(connect(self.url, subprotocols=BINARY, open_timeout=10,
                                             max_size=None, legacy=True))
                self.connections += 1
                return self.ws
            except (InvalidHandshake, OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def send(self, data: bytes) -> None:
        (self.ws or self._connect(time.monotonic() + 10)).send(data)

    def read_until(self, pattern: str, timeout: float = 60) -> str:
        """The text from the last match on, up to the first match of `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.text[self.position:])
            if match:
                start, self.position = self.position, self.position + match.end()
                return self.text[start:self.position]
            try:
                ws = self.ws or self._connect(deadline)
                ws._fill(deadline)
                self.text += ws.buffer.decode(errors="replace")
                ws.buffer = b""
            except ConnectionClosed:
                self.ws = None  # the guest's serial port went away: connect again
            except (TimeoutError, InvalidHandshake, OSError) as exc:
                raise AssertionError(
                    f"{pattern!r} never came on the serial console ({type(exc).__name__}: "
                    f"{exc}; {self.connections} connection(s)); got:\n"
                    f"{self.text[self.position:][-3000:]}") from None

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


def websocket_refusal(url: str, token_cookie: str | None = None, wait: float = 3) -> str | None:
    """How a proxy refuses a websocket: 'HTTP <status>' when it declines the
    upgrade, 'closed' when it closes right after; None when it keeps it open."""
    try:
        with websocket(url, token_cookie) as ws:
            try:
                ws._fill(time.monotonic() + wait)
            except TimeoutError:
                return None
            except ConnectionClosed:
                return "closed"
            return None
    except InvalidStatus as exc:
        return f"HTTP {exc.response.status_code}"
    except InvalidHandshake as exc:
        return f"handshake: {exc}"


def ws_url_of(page_url: str, path: str = "") -> str:
    """ws://host:port/<path> of an http://host:port/… page (or ws://… address)."""
    match = re.match(r"(?:https?|wss?)://([^/?#]+)", page_url)
    assert match, page_url
    return f"ws://{match.group(1)}/{path}"


# --- SPICE ------------------------------------------------------------------------------

SPICE_MAGIC = b"REDQ"
SPICE_VERSION = (2, 2)
CHANNEL_MAIN = 1
TICKET_PUBKEY_BYTES = 162  # RSA 1024 in SubjectPublicKeyInfo DER


def spice_link_message(channel_type: int = CHANNEL_MAIN, channel_id: int = 0) -> bytes:
    """SpiceLinkHeader + SpiceLinkMess (no capabilities), little-endian."""
    mess = struct.pack("<IBBIII", 0, channel_type, channel_id, 0, 0, 18)
    return SPICE_MAGIC + struct.pack("<III", *SPICE_VERSION, len(mess)) + mess


@dataclass(frozen=True)
class SpiceLink:
    """What a SPICE server answered to a link: the reply's error code, its ticket
    key, and (when that error was 0) the result of sending the ticket."""

    magic: bytes
    version: tuple[int, int]
    error: int
    public_key: rsa.RSAPublicKey | None
    result: int | None


def spice_ticket(key: rsa.RSAPublicKey, password: bytes = b"") -> bytes:
    """The password, NUL-terminated, RSA-OAEP(SHA-1) encrypted with the server's key."""
    return key.encrypt(password + b"\0", padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                                      algorithm=hashes.SHA1(), label=None))


def spice_link(send: Callable[[bytes], None], read_exact: Callable[[int], bytes],
               password: bytes = b"") -> SpiceLink:
    """Link the main channel over any byte stream and send the ticket."""
    send(spice_link_message())
    magic, major, minor, size = struct.unpack("<4sIII", read_exact(16))
    if magic != SPICE_MAGIC:
        return SpiceLink(magic, (major, minor), -1, None, None)
    body = read_exact(size)
    (error,) = struct.unpack_from("<I", body)
    if error:
        return SpiceLink(magic, (major, minor), error, None, None)
    key = serialization.load_der_public_key(body[4:4 + TICKET_PUBKEY_BYTES])
    assert isinstance(key, rsa.RSAPublicKey)
    send(spice_ticket(key, password))
    (result,) = struct.unpack("<I", read_exact(4))
    return SpiceLink(magic, (major, minor), error, key, result)


def spice_link_tcp(host: str, port: int, password: bytes = b"") -> SpiceLink:
    with socket.create_connection((host, port), timeout=10) as sock:
        return spice_link(sock.sendall, _socket_reader(sock), password)


def spice_link_websocket(url: str, token: str, password: bytes = b"") -> SpiceLink:
    """The link through the SPICE HTML5 proxy, token in the cookie as spice_auto.html."""
    with websocket(url, token_cookie=token) as ws:
        return spice_link(ws.send, ws.read_exact, password)


# --- RFB (native VNC) ---------------------------------------------------------------

@dataclass(frozen=True)
class RfbResult:
    """The outcome of an RFB 3.8 handshake: accepted, and the desktop name if so."""

    accepted: bool
    name: str = ""
    reason: str = ""


def rfb_handshake(send: Callable[[bytes], None], read_exact: Callable[[int], bytes],
                  password: str | None) -> RfbResult:
    """Version, VNC authentication (type 2) with `password` when offered (else None,
    type 1), ClientInit; over any byte stream."""
    version = read_exact(12)
    if not version.startswith(b"RFB "):
        return RfbResult(False, reason=f"not RFB: {version!r}")
    send(b"RFB 003.008\n")
    count = read_exact(1)[0]
    if count == 0:
        return RfbResult(False, reason=_rfb_reason(read_exact))
    types = read_exact(count)
    if 2 in types and password is not None:
        send(b"\x02")
        send(vnc_auth.response(password, read_exact(16)))
    elif 1 in types:
        send(b"\x01")
    else:
        return RfbResult(False, reason=f"security types {list(types)}")
    if read_exact(4) != b"\0\0\0\0":
        return RfbResult(False, reason=_rfb_reason(read_exact))
    send(b"\x01")  # ClientInit: shared
    header = read_exact(24)
    (length,) = struct.unpack(">I", header[20:24])
    return RfbResult(True, name=read_exact(length).decode(errors="replace"))


def _rfb_reason(read_exact: Callable[[int], bytes]) -> str:
    try:
        (length,) = struct.unpack(">I", read_exact(4))
        return read_exact(length).decode(errors="replace")
    except (ConnectionError, ConnectionClosed, TimeoutError):
        return "(closed without a reason)"


def rfb_handshake_tcp(host: str, port: int, password: str | None) -> RfbResult:
    with socket.create_connection((host, port), timeout=10) as sock:
        return rfb_handshake(sock.sendall, _socket_reader(sock), password)


def rfb_handshake_websocket(url: str, password: str | None = None) -> RfbResult:
    """The RFB handshake through a websocket proxy (as noVNC does it)."""
    with websocket(url) as ws:
        return rfb_handshake(ws.send, ws.read_exact, password)


def _socket_reader(sock: socket.socket) -> Callable[[int], bytes]:
    def read_exact(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        return data
    return read_exact


VNCDOTOOL_CAPTURE = """
import sys
from vncdotool import api
client = api.connect(sys.argv[1], password=sys.argv[2], timeout=30)
try:
    client.captureScreen(sys.argv[3])
except Exception as exc:  # a refused client never connected: nothing to disconnect
    print(f"{type(exc).__name__}: {exc}")
    api.shutdown()
    sys.exit(1)
client.disconnect()
api.shutdown()
print("captured")
"""


def vncdotool_capture(host: str, port: int, password: str, path: Path
                      ) -> subprocess.CompletedProcess[str]:
    """vncdotool's API captures the screen to `path` (exit 0) or says why not (exit 1).
    In a process of its own: its twisted reactor runs once per process."""
    return subprocess.run([sys.executable, "-c", VNCDOTOOL_CAPTURE, f"{host}::{port}",
                           password, str(path)], capture_output=True, text=True, timeout=90)


def save_png(data: bytes, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
