"""uvicorn's httptools protocol with the timeouts it lacks, for every server we run.

Used by the API (service/api.http_server) and by the metadata service
(metadata/service.py), whose clients are untrusted guests; it lives here so
neither imports the other.

uvicorn closes a keep-alive connection idle between requests (timeout_keep_alive,
our `[wsgi] client_socket_timeout`), but a client that opens a connection and
sends nothing, or sends its headers one byte a second, or stops halfway through
a body, holds its connection (and a request's memory) forever. This protocol
adds two watchdogs:

- headers: from the connection's start, or from the first byte of a later
  request on it, the request line and headers must be complete within
  `[wsgi] client_header_timeout` seconds;
- body: while a body is being received, no gap between two pieces may exceed
  `[wsgi] client_socket_timeout` seconds (not counted while uvicorn itself has
  paused reading because the application is behind).

A client cut off mid-body is seen by the application as a disconnect
(api/handler.py logs it as one).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LOG = logging.getLogger(__name__)


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """Set `header_timeout` and `body_timeout` on a subclass (see `with_timeouts`)."""

    header_timeout: float = 60.0
    body_timeout: float = 900.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watchdog: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._in_body = False

    # --- the watchdog ---
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._watchdog = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _expired(self) -> None:
        self._watchdog = None
        if self.transport is None or self.transport.is_closing():
            return
        if self._in_body and self.flow is not None and self.flow.read_paused:
            self._arm(self.body_timeout)  # we stopped reading, not the client
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "client"
        if self._in_body:
            LOG.info("Closed the connection from %s: no request body data for %.0f s",
                     peer, self.body_timeout)
        else:
            LOG.info("Closed the connection from %s: request headers not complete "
                     "within %.0f s", peer, self.header_timeout)
        self.transport.close()

    # --- protocol and parser callbacks ---
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_headers = True
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_headers:  # a later request on a kept-alive connection
            self._in_headers = True
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_body = True
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._in_body:
            self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()


def with_timeouts(header_timeout: float, body_timeout: float
                  ) -> type[TimedHttpToolsProtocol]:
    """The protocol class for uvicorn.Config(http=...) with these timeouts."""
    return type("TimedHttpToolsProtocol", (TimedHttpToolsProtocol,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout})
