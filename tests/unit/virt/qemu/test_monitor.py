"""QMP sessions against a small QMP server written here (no QEMU)."""

from __future__ import annotations

import array
import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from novalet.virt.qemu import monitor

GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7},
                                "package": ""}, "capabilities": []}}


class QmpServer:
    """Answers qmp_capabilities, query-status, getfd (receiving the fd) and errors."""

    def __init__(self) -> None:
        self.received_fds: list[int] = []
        self.commands: list[str] = []

    def handle(self, conn: socket.socket) -> None:
        conn.sendall(json.dumps(GREETING).encode() + b"\r\n")
        buffer = ""
        decoder = json.JSONDecoder()
        while True:
            fds = array.array("i")
            data, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_LEN(4 * fds.itemsize))
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                    self.received_fds.extend(fds)
            if not data:
                return
            buffer += data.decode()
            while buffer.strip():
                # qemu.qmp sends JSON objects back to back, with no separator.
                try:
                    msg, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break
                buffer = buffer.lstrip()[end:]
                self.commands.append(msg["execute"])
                reply: dict[str, Any] = {"return": {}}
                if msg["execute"] == "query-status":
                    reply = {"return": {"status": "running", "running": True}}
                elif msg["execute"] == "broken":
                    reply = {"error": {"class": "GenericError", "desc": "no such thing"}}
                if "id" in msg:
                    reply["id"] = msg["id"]
                conn.sendall(json.dumps(reply).encode() + b"\r\n")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[QmpServer, Path]]:
    path = tmp_path / "qmp.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    qmp = QmpServer()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            qmp.handle(conn)

    task = asyncio.get_running_loop().run_in_executor(None, serve)
    yield qmp, path
    listener.close()
    await asyncio.wait_for(task, 5)
    for fd in qmp.received_fds:
        os.close(fd)


async def test_commands_and_their_results(server: tuple[QmpServer, Path]) -> None:
    qmp, path = server
    async with monitor.connect(path) as mon:
        assert (await mon.execute("query-status"))["status"] == "running"
        with pytest.raises(monitor.MonitorCommandFailed, match="refused broken: no such thing"):
            await mon.execute("broken")
    assert qmp.commands == ["qmp_capabilities", "query-status", "broken"]


async def test_a_file_descriptor_reaches_the_server(server: tuple[QmpServer, Path],
                                                    tmp_path: Path) -> None:
    qmp, path = server
    target = tmp_path / "state"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        async with monitor.connect(path) as mon:
            await mon.pass_fd("suspend", fd)
    finally:
        os.close(fd)
    assert qmp.commands[-1] == "getfd" and len(qmp.received_fds) == 1
    os.write(qmp.received_fds[0], b"written by the server")
    assert target.read_bytes() == b"written by the server"


async def test_nobody_listening_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(monitor.MonitorUnreachable, match="does not answer"):
        async with monitor.connect(tmp_path / "nothing.sock"):
            pass
