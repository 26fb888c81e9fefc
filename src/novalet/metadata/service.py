"""Runs the metadata service under uvicorn on [metadata] listen:port until cancelled,
with the API's header and body timeouts (common/http_server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette

from novalet import config
from novalet.common.http_server import with_timeouts
from novalet.exceptions import NovaletError
from novalet.metadata import vendordata
from novalet.metadata.app import create_app
from novalet.metadata.lookup import InstanceLookup, LookupFunction

LOG = logging.getLogger(__name__)


class MetadataServiceError(NovaletError):
    msg_fmt = "Metadata service: %(reason)s"


def build_app(conf: config.Config, lookup: InstanceLookup | LookupFunction) -> Starlette:
    """The app with the vendor data and trusted proxies the configuration names."""
    proxies = [item for item in str(conf.get("metadata", "trusted_proxies"))
               .replace(",", " ").split() if item]
    try:
        return create_app(lookup, vendor_data=vendordata.from_conf(conf),
                          trusted_proxies=proxies)
    except ValueError as exc:
        raise config.ConfigError(f"[metadata] trusted_proxies: {exc}") from None


class _Server(uvicorn.Server):
    """uvicorn leaving signals alone: the process running the service owns them (the
    all-in-one runs several servers) and stops this one by cancelling serve()."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class MetadataServer:
    """The metadata service on one listening socket; start() returns once it listens."""

    def __init__(self, conf: config.Config, lookup: InstanceLookup | LookupFunction,
                 host: str | None = None, port: int | None = None) -> None:
        self.host = host if host is not None else str(conf.get("metadata", "listen"))
        self.port = port if port is not None else int(conf.get("metadata", "port"))
        self.app = build_app(conf, lookup)
        # Guests are untrusted clients: the API's header and body watchdogs apply
        # ([wsgi] options, as for Nova's metadata API), and a kept-alive connection
        # idles for 5 s at most (cloud-init asks its questions in quick succession).
        idle = float(conf.get("wsgi", "client_socket_timeout"))
        protocol = with_timeouts(float(conf.get("wsgi", "client_header_timeout")), idle)
        self._server = _Server(uvicorn.Config(
            self.app, loop="none", http=protocol, lifespan="off", log_level="warning",
            access_log=False, proxy_headers=False, server_header=False, date_header=False,
            timeout_keep_alive=max(1, min(5, int(idle))), timeout_graceful_shutdown=5))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]),
                                         name="metadata-server")
        try:
            while not self._server.started and not self._task.done():
                await asyncio.sleep(0.01)
        except BaseException:   # cancelled while starting: don't leave it listening
            await self.stop()
            raise
        if not self._server.started:
            await self._task  # re-raises what stopped it
            raise MetadataServiceError(reason=f"stopped before serving on {self.address}")
        LOG.info("Metadata service listening on %s", self.address)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def wait(self) -> None:
        """Until the server stops; cancelling this leaves the server running."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish (5 s at most), return."""
        if self._task is None:
            return
        self._server.should_exit = True
        task, self._task = self._task, None
        await task
        LOG.info("Metadata service on %s stopped", self.address)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MetadataServiceError(reason=f"cannot listen on {host}:{port}: "
                                   f"{exc.strerror or exc}; set [metadata] listen and port "
                                   "to a free address") from None
    return sock


async def serve(conf: config.Config, lookup: InstanceLookup | LookupFunction,
                host: str | None = None, port: int | None = None) -> None:
    """Serve metadata on host:port (default [metadata] listen and port) until
    cancelled, then shut down gracefully. Raises MetadataServiceError at once when
    it can't listen, ConfigError when the configuration is wrong."""
    server = MetadataServer(conf, lookup, host, port)
    try:
        await server.start()
        await server.wait()
    finally:
        await server.stop()
