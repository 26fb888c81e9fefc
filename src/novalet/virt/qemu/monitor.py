"""Talking to a running QEMU over its QMP socket (through the qemu.qmp library).

Each operation opens a short session and closes it: a QEMU's QMP socket serves
one client at a time, and holding none open means a restarted compute service
(or a second tool) can always get in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from qemu.qmp import ConnectError, ExecuteError, QMPClient, QMPError

from novalet.virt.driver import VirtDriverError

LOG = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0


class MonitorUnreachable(VirtDriverError):
    msg_fmt = "QEMU monitor at %(socket)s does not answer: %(reason)s"


class MonitorCommandFailed(VirtDriverError):
    msg_fmt = "QEMU refused %(command)s: %(reason)s"


class Monitor(Protocol):
    """One QMP session."""

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run a QMP command and return its result; MonitorCommandFailed on an error reply."""

    async def pass_fd(self, name: str, fd: int) -> None:
        """Hand QEMU an open file descriptor under `name` (for fd: migration URIs)."""


MonitorConnector = Callable[[Path], AbstractAsyncContextManager[Monitor]]
"""Opens a QMP session on a socket path; the driver's seam for unit tests."""


class _QmpSession:
    def __init__(self, client: QMPClient, path: Path) -> None:
        self.client = client
        self.path = path

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(self.client.execute(command, arguments),
                                            COMMAND_TIMEOUT)
        except ExecuteError as exc:
            raise MonitorCommandFailed(command=command, reason=str(exc)) from None
        except (TimeoutError, QMPError, OSError, EOFError) as exc:
            raise MonitorUnreachable(socket=self.path,
                                     reason=f"{command}: {exc!r}") from None
        LOG.debug("QMP %s %s -> %.200r (%.3fs)", command, arguments or "", result,
                  time.monotonic() - started)
        return result

    async def pass_fd(self, name: str, fd: int) -> None:
        self.client.send_fd_scm(fd)
        await self.execute("getfd", {"fdname": name})


@asynccontextmanager
async def connect(path: Path) -> AsyncIterator[Monitor]:
    """A QMP session on the socket at path, capabilities negotiated, closed on exit."""
    client = QMPClient(path.parent.name)
    sock: socket.socket | None = None
    try:
        sock = await asyncio.wait_for(_open_unix(path), CONNECT_TIMEOUT)
        await asyncio.wait_for(client.connect(sock), CONNECT_TIMEOUT)
    except (TimeoutError, ConnectError, QMPError, OSError) as exc:
        await _quiet_disconnect(client)
        if sock is not None:
            sock.close()
        raise MonitorUnreachable(socket=path, reason=_cause(exc)) from None
    try:
        yield _QmpSession(client, path)
    finally:
        await _quiet_disconnect(client)


async def _open_unix(path: Path) -> socket.socket:
    """A connected unix socket, however long path is.

    sun_path holds 107 bytes; going through /proc/self/fd/<the directory> keeps
    the name short whatever the depth of the instance directory.
    """
    dir_fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dir_fd}/{path.name}")
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dir_fd)
    return sock


async def _quiet_disconnect(client: QMPClient) -> None:
    try:
        await client.disconnect()
    except (QMPError, OSError, EOFError):
        # The peer may already be gone (after `quit`); nothing is left to close.
        pass


def _cause(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no greeting within {CONNECT_TIMEOUT:.0f}s"
    inner = getattr(exc, "exc", None)
    return f"{exc} ({inner})" if inner else str(exc) or repr(exc)
