"""`novalet api` got no port preflight (it opened the database and bootstrapped the
cloud before finding its port busy), and a failed bind said three different things
(up.serve, roles.Api, api_workers.listen_socket): now every path names the port, its
holder and how to pick another, in one message (preflight.busy / cannot_listen)."""

from __future__ import annotations

import asyncio
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalet import config
from novalet.console.proxies import PORT_OPTIONS
from novalet.db import migrate
from novalet.db.engine import Database
from novalet.service import api_workers, preflight, roles, up


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port this process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _conf(tmp_path: Path, port: int) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path))
    conf.set("DEFAULT", "compute_driver", "fake")
    conf.set("database", "connection", f"sqlite:///{tmp_path / 'novalet.sqlite'}")
    conf.set("api", "listen", "127.0.0.1")
    conf.set("api", "port", port)
    conf.set("metadata", "port", 0)
    for section, option in PORT_OPTIONS:
        conf.set(section, option, 0)
    return conf


def _says_busy(message: str, port: int, how: str) -> None:
    assert message.startswith(f"Port {port} on 127.0.0.1, for the API, is in use by "
                              f"pid {os.getpid()} "), message
    assert "Pick another port: " in message and how in message, message


def test_novalet_api_checks_its_port_before_the_database(tmp_path: Path,
                                                         busy_port: int) -> None:
    api = roles.Api(_conf(tmp_path, busy_port))
    with pytest.raises(preflight.PortsInUse) as error:
        asyncio.run(api.start())
    _says_busy(error.value.message, busy_port, "[api] port = ")
    assert not (tmp_path / "novalet.sqlite").exists()  # nothing opened, nothing made


def test_a_port_taken_after_the_check_says_the_same_in_novalet_api(
        tmp_path: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bind is Novalet's, not uvicorn's (which exits the process with status 3
    when it cannot bind, so its "cannot listen" message was never shown)."""
    monkeypatch.setattr(preflight, "check_ports", lambda conf, wanted=None: None)  # the race
    api = roles.Api(_conf(tmp_path, busy_port))
    with pytest.raises(preflight.CannotListen) as error:
        asyncio.run(api.start())
    _says_busy(error.value.message, busy_port, "[api] port = ")
    assert not (tmp_path / "novalet.sqlite").exists()


def test_a_port_taken_after_the_check_says_the_same_in_novalet_up(
        tmp_path: Path, busy_port: int) -> None:
    """up.serve (what runs after `novalet up`'s preflight) on a port taken since."""
    with pytest.raises(SystemExit) as exit_:
        asyncio.run(up.serve(_conf(tmp_path, busy_port), 0.0))
    message = str(exit_.value.code)
    assert message.startswith("novalet: cannot start:\n")
    _says_busy(message.split("\n", 1)[1], busy_port, "novalet up --port ")


@pytest.mark.parametrize(("command", "how"), [("up", "novalet up --port "),
                                              ("api", "[api] port = ")])
def test_the_shared_api_socket_says_the_same(tmp_path: Path, busy_port: int,
                                             command: str, how: str) -> None:
    with pytest.raises(preflight.CannotListen) as error:
        api_workers.listen_socket(_conf(tmp_path, busy_port), command)
    _says_busy(error.value.message, busy_port, how)


def test_a_bind_failing_for_another_reason_says_why(tmp_path: Path) -> None:
    listener = preflight.api_listener(_conf(tmp_path, 8774))
    error = preflight.cannot_listen(listener, OSError(99, "Cannot assign requested address"))
    assert error.message == ("Cannot listen on 127.0.0.1:8774 for the API: Cannot assign "
                             "requested address.")


def test_novalet_api_serves_on_the_socket_it_bound(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    conf = _conf(tmp_path, port)

    async def run() -> bytes:
        db = Database(conf.database_url)
        try:
            await migrate.sync(db)
        finally:
            await db.close()
        api = roles.Api(conf)
        await api.start()
        try:
            return await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read())
        finally:
            await api.stop()

    assert b'"compute"' in asyncio.run(run())
