"""The websocket console proxies (noVNC, SPICE HTML5, serial), on websockify.

A browser opens the proxy's page (noVNC's or spice-html5's, served from the
Debian package's directory) and then a websocket carrying the console token,
in the query (`?token=`) or, for spice_auto.html, in the `token` cookie. The
proxy asks the conductor what the token opens (never the database), refuses
the upgrade with a 403 when it opens nothing of this proxy's console type, and
otherwise relays between the websocket and the guest's display.

websockify's request handler does the websocket work; the server is our own
threading HTTPServer, because websockify's LibProxyServer os.chdir()s the
whole process into the web root and shares one target among all connections.
Each connection runs in a daemon thread; token checks hop to the proxy's
asyncio loop, where the bus lives.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import HTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockify.websocketproxy import ProxyRequestHandler

from novalet.common.context import RequestContext
from novalet.console.types import Authorization

LOG = logging.getLogger(__name__)

_TOKEN_IN_TEXT = re.compile(r"(token(?:=|%3D))([^&\s'\"]+)", re.IGNORECASE)

MAX_CONNECTIONS = 256
"""Connections (each a thread) a proxy serves at once; more are closed at once."""

CONNECT_TIMEOUT = 10.0
"""Seconds to reach the guest's display once the token is good."""


@dataclass(frozen=True)
class ProxyKind:
    """One websocket proxy: the console type its tokens must be for, and the web
    client it serves (None: websocket only)."""

    console_type: str
    web_root: str | None
    package: str | None

    @property
    def name(self) -> str:
        return {"novnc": "noVNC proxy", "spice-html5": "SPICE HTML5 proxy",
                "serial": "serial console proxy"}.get(self.console_type, self.console_type)


NOVNC = ProxyKind("novnc", "/usr/share/novnc", "novnc")
SPICE = ProxyKind("spice-html5", "/usr/share/spice-html5", "spice-html5")
SERIAL = ProxyKind("serial", None, None)

TokenCheck = Callable[[RequestContext, str], "Authorization | None"]
"""Asks the conductor what a token opens (run from a handler thread)."""


class WebRootMissing(RuntimeError):
    """The web client's package is not installed."""


class TokenCheckFailed(Exception):
    """The conductor could not be asked (bus down, timeout)."""


def token_label(token: str) -> str:
    """What logs may say about a token: a prefix of its hash, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


class ConsoleProxyHandler(ProxyRequestHandler):  # type: ignore[misc]  # untyped library
    """One connection: static files of the web client, or a token-checked
    websocket relayed to the guest's display."""

    server: ConsoleProxyServer
    target: Authorization | None = None
    timeout = 30  # seconds for a request (or an idle keep-alive); none once relaying

    # --- static files -----------------------------------------------------
    def translate_path(self, path: str) -> str:
        # SimpleHTTPRequestHandler resolves against self.directory (the process's
        # working directory by default); point it at this proxy's web root.
        self.directory = self.server.kind.web_root or "/nonexistent"
        return str(super().translate_path(path))

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        self.send_error(HTTPStatus.NOT_FOUND, "No directory listings here")
        return None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        # websockify logs the request path, which carries the token: hide it.
        text = _TOKEN_IN_TEXT.sub(lambda m: m.group(1) + token_label(m.group(2)), format % args)
        LOG.info("%s %s: %s", self.server.kind.name, self.client_address[0], text)

    # --- the websocket ------------------------------------------------------
    def handle_upgrade(self) -> None:
        ctx = RequestContext.admin()
        ctx.bind()
        refusal = self._origin_refusal()
        if refusal is None:
            refusal = self._authorize(ctx)
        if refusal is not None:
            status, message = refusal
            LOG.info("%s: refused a websocket from %s: %s", self.server.kind.name,
                     self.client_address[0], message)
            self.send_error(status, message)
            self.close_connection = True
            return
        super().handle_upgrade()

    def _authorize(self, ctx: RequestContext) -> tuple[int, str] | None:
        """None when the token opens a console of this proxy's type (kept in
        self.target); else the status and message to refuse with."""
        token = self._token()
        if not token:
            return HTTPStatus.FORBIDDEN, "No console token (expected ?token= or a token cookie)"
        label = token_label(token)
        try:
            auth = self.server.check(ctx, token)
        except TokenCheckFailed as exc:
            LOG.warning("%s: could not check token %s: %s", self.server.kind.name, label, exc)
            return HTTPStatus.SERVICE_UNAVAILABLE, "Console authorization is unavailable; retry"
        if auth is None:
            return HTTPStatus.FORBIDDEN, ("Console token refused: unknown, expired, or its "
                                          f"instance is gone (token {label})")
        if auth.console_type != self.server.kind.console_type:
            return HTTPStatus.FORBIDDEN, (
                f"Console token refused: it is for a {auth.console_type} console, this "
                f"proxy serves {self.server.kind.console_type} (token {label})")
        LOG.info("%s: token %s opens the %s console of instance %s", self.server.kind.name,
                 label, auth.console_type, auth.instance_uuid)
        self.target = auth
        return None

    def _token(self) -> str | None:
        values = parse_qs(urlsplit(self.path).query).get("token")
        if values and values[0].strip():
            return values[0].strip()
        raw = self.headers.get("Cookie")
        if raw:
            try:
                morsel = SimpleCookie(raw).get("token")
            except CookieError:
                return None
            if morsel is not None and morsel.value:
                return morsel.value
        return None

    def _origin_refusal(self) -> tuple[int, str] | None:
        """Cross-site websocket hijacking guard: a browser's Origin must name this
        proxy (its Host header or its configured base URL). Clients that are not
        browsers may send no Origin at all."""
        origin = self.headers.get("Origin")
        if origin is None:
            return None
        parts = urlsplit(origin)
        # The Host header carries no scheme: a port it leaves out is the Origin's
        # scheme's default (a TLS front end forwards Host as it was).
        mine = {netloc(self.headers.get("Host", ""), parts.scheme)}
        if self.server.base_url:
            base = urlsplit(self.server.base_url)
            mine.add(netloc(base.netloc, base.scheme))
        if parts.scheme not in ("http", "https") or netloc(parts.netloc, parts.scheme) not in mine:
            return HTTPStatus.FORBIDDEN, f"Origin {origin[:100]} may not open this console"
        return None

    def new_websocket_client(self) -> None:
        """Connect to the token's target and relay (websockify's do_proxy)."""
        assert self.target is not None
        host, port = self.target.target.host, self.target.target.port
        try:
            target = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            LOG.warning("%s: cannot reach the console of %s at %s:%s: %s",
                        self.server.kind.name, self.target.instance_uuid, host, port, exc)
            raise self.CClose(1011, "Cannot reach the console") from exc
        # Non-blocking: do_proxy sends to the display when select says it can and
        # requeues what did not fit. A blocking send of a whole buffer would stall
        # the loop while the display waits for us to read its echo: a deadlock (seen
        # relaying megabytes to an echoing serial console).
        target.setblocking(False)
        self.connection.settimeout(None)  # a console may sit idle for hours
        target.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.do_proxy(target)
        finally:
            try:
                target.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            target.close()
            LOG.info("%s: closed the console of %s", self.server.kind.name,
                     self.target.instance_uuid)


def netloc(value: str, scheme: str) -> tuple[str, int | None]:
    """(host, port) of a Host header or URL netloc, the scheme's default port filled in."""
    parts = urlsplit(f"//{value.strip().lower()}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(scheme)
    return parts.hostname or "", port


class ConsoleProxyServer(ThreadingMixIn, HTTPServer):
    """A threading HTTP server for one ProxyKind; connections are daemon threads."""

    daemon_threads = True
    allow_reuse_address = True
    # What websockify's handler reads from its server:
    only_upgrade = False
    file_only = True
    verbose = False
    daemon = False
    record = ""
    run_once = False
    traffic = False
    web_auth = False
    host_token = False
    heartbeat = None
    token_plugin = None
    auth_plugin = None
    logger = LOG

    def __init__(self, kind: ProxyKind, address: tuple[str, int], check: TokenCheck,
                 base_url: str = "") -> None:
        if kind.web_root is not None and not os.path.isdir(kind.web_root):
            raise WebRootMissing(
                f"the {kind.name} serves its web client from {kind.web_root}, which does "
                f"not exist; install the Debian package {kind.package} "
                f"(apt-get install {kind.package})")
        self.kind = kind
        self.check = check
        self.base_url = base_url
        self.only_upgrade = kind.web_root is None
        self.handler_id = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ConsoleProxyHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            if len(self._open) >= MAX_CONNECTIONS:
                LOG.warning("%s: %d connections open; refusing one more from %s",
                            self.kind.name, len(self._open), client_address[0])
                busy = True
            else:
                busy = False
                self.handler_id += 1
                self._open.add(request)
        if busy:
            super().shutdown_request(request)
            return
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A handler thread's exception: into the log, not a traceback on stderr
        (a browser tab closed mid-console resets its connection)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            LOG.info("%s: connection from %s ended: %s", self.kind.name, client_address[0],
                     exc or type(exc).__name__)
        else:
            LOG.exception("%s: error serving %s", self.kind.name, client_address[0])

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open connection (their threads then finish)."""
        with self._lock:
            open_now = list(self._open)
        for sock in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def conductor_check(loop: asyncio.AbstractEventLoop, check: Callable[..., Any],
                    timeout: float) -> TokenCheck:
    """A TokenCheck that runs `check(ctx, token)` (ConductorAPI.console_check_token)
    on `loop` and waits for it from the calling thread."""
    def run(ctx: RequestContext, token: str) -> Authorization | None:
        future = asyncio.run_coroutine_threadsafe(check(ctx, token), loop)
        try:
            result = future.result(timeout)
        except FutureTimeout as exc:
            future.cancel()
            raise TokenCheckFailed(f"no answer from the conductor in {timeout:.0f}s") from exc
        except Exception as exc:  # the bus's errors, whatever the backend
            raise TokenCheckFailed(str(exc) or type(exc).__name__) from exc
        return result if isinstance(result, Authorization) else None
    return run


class WebsocketProxy:
    """One ConsoleProxyServer serving in a thread of its own."""

    def __init__(self, kind: ProxyKind, host: str, port: int, check: TokenCheck,
                 base_url: str = "") -> None:
        self.kind = kind
        self.server = ConsoleProxyServer(kind, (host, port), check, base_url)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       name=f"{kind.console_type}-proxy", daemon=True)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.thread.start()

    async def stop(self) -> None:
        """Stop listening and end open connections; waits for the serving thread
        off the event loop."""
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        if self.thread.is_alive():
            stopper = threading.Thread(target=self.server.shutdown, daemon=True)
            stopper.start()
            while stopper.is_alive():  # wake serve_forever rather than wait out its poll
                self._knock()
                stopper.join(0.05)
        self.server.close_connections()
        self.server.server_close()

    def _knock(self) -> None:
        host = str(self.server.server_address[0])
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        try:
            socket.create_connection((host, self.port), timeout=1).close()
        except OSError:
            pass

