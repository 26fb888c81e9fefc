"""[api] workers: what more than one API process needs, said before anything starts."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from novalet import config
from novalet.service import api_workers, preflight, up


def conf_with(tmp_path: Path, workers: int, transport: str = "memory://",
              database: str = "") -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path))
    conf.set("DEFAULT", "transport_url", transport)
    conf.set("api", "workers", workers)
    if database:
        conf.set("database", "connection", database)
    return conf


def test_one_worker_needs_nothing_more(tmp_path: Path) -> None:
    assert api_workers.count(conf_with(tmp_path, 1)) == 1


def test_workers_below_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(api_workers.ApiWorkersNotPossible, match="1 or more"):
        api_workers.count(conf_with(tmp_path, 0))


def test_more_workers_need_a_shared_bus(tmp_path: Path) -> None:
    with pytest.raises(api_workers.ApiWorkersNotPossible, match="transport_url = rabbit"):
        api_workers.count(conf_with(tmp_path, 2, database="postgresql://u:p@db/n"))


def test_more_workers_need_a_database_server(tmp_path: Path) -> None:
    with pytest.raises(api_workers.ApiWorkersNotPossible, match="database server"):
        api_workers.count(conf_with(tmp_path, 2, "rabbit://u:p@mq:5672/v"))


def test_more_workers_with_rabbit_and_postgresql(tmp_path: Path) -> None:
    conf = conf_with(tmp_path, 3, "rabbit://u:p@mq:5672/v", "postgresql://u:p@db/n")
    assert api_workers.count(conf) == 3


def test_novalet_up_with_two_workers_on_the_memory_bus_refuses_with_a_message(
        tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="Cannot start: .*transport_url = rabbit"):
        asyncio.run(up.serve(conf_with(tmp_path, 2), 0.0))


def test_a_busy_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        conf = conf_with(tmp_path, 2)
        conf.set("api", "listen", "127.0.0.1")
        conf.set("api", "port", busy.getsockname()[1])
        port = busy.getsockname()[1]
        with pytest.raises(preflight.CannotListen,
                           match=f"Port {port} on 127.0.0.1, for the API, is in use by pid"):
            api_workers.listen_socket(conf)
