"""A test run stops the backing servers it started (issue 14, item 10: `make test` left
RabbitMQ, PostgreSQL and MariaDB running with no word), and leaves those that ran
before it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import conftest, phases


def test_running_backing_servers_reads_their_pid_files(tmp_path: Path) -> None:
    (tmp_path / "rabbitmq").mkdir()
    (tmp_path / "rabbitmq" / "rabbit.pid").write_text(f"{os.getpid()}\n")
    (tmp_path / "postgresql" / "data").mkdir(parents=True)
    (tmp_path / "postgresql" / "data" / "postmaster.pid").write_text(
        f"{os.getpid()}\n/some/dir\n")
    (tmp_path / "mariadb" / "run").mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "mariadb" / "run" / "mysqld.pid").write_text(f"{dead.pid}\n")
    assert conftest.running_backing_servers(tmp_path) == {"rabbitmq", "postgresql"}
    assert conftest.running_backing_servers(tmp_path / "nothing") == set()


def _session(before: set[str], lines: list[str]) -> Any:
    config = SimpleNamespace(
        stash={conftest._BACKING_BEFORE: before},
        pluginmanager=SimpleNamespace(get_plugin=lambda name: SimpleNamespace(
            write_line=lines.append)))
    return SimpleNamespace(config=config)


@pytest.fixture
def stops(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def run(argv: list[str], **kwargs: Any) -> Any:
        calls.append(argv)
        return SimpleNamespace(returncode=0, stderr="")

    monkeypatch.setattr(conftest.subprocess, "run", run)
    monkeypatch.setattr(conftest, "other_test_runs", lambda: [])
    monkeypatch.delenv("NOVALET_KEEP_SERVICES", raising=False)
    monkeypatch.delenv(phases.PHASE_ENV, raising=False)  # as when `make test` runs this
    return calls


def test_the_run_stops_only_the_servers_it_started(
        monkeypatch: pytest.MonkeyPatch, stops: list[list[str]]) -> None:
    monkeypatch.setattr(conftest, "running_backing_servers",
                        lambda: {"rabbitmq", "postgresql", "mariadb"})
    lines: list[str] = []
    conftest.pytest_sessionfinish(_session({"rabbitmq"}, lines))
    assert stops == [[str(conftest.BACKING_SCRIPT), "stop", "mariadb", "postgresql"]]
    assert "stopped the backing servers this test run started: mariadb, postgresql" in lines[0]


def test_servers_that_ran_before_stay_and_nothing_is_said(
        monkeypatch: pytest.MonkeyPatch, stops: list[list[str]]) -> None:
    monkeypatch.setattr(conftest, "running_backing_servers", lambda: {"rabbitmq"})
    lines: list[str] = []
    conftest.pytest_sessionfinish(_session({"rabbitmq"}, lines))
    assert stops == [] and lines == []


def test_keep_services_leaves_them_and_says_how_to_stop(
        monkeypatch: pytest.MonkeyPatch, stops: list[list[str]]) -> None:
    monkeypatch.setattr(conftest, "running_backing_servers", lambda: {"postgresql"})
    monkeypatch.setenv("NOVALET_KEEP_SERVICES", "1")
    lines: list[str] = []
    conftest.pytest_sessionfinish(_session(set(), lines))
    assert stops == []
    assert "make services-stop" in lines[0]


def test_servers_another_test_run_may_use_stay(
        monkeypatch: pytest.MonkeyPatch, stops: list[list[str]]) -> None:
    monkeypatch.setattr(conftest, "running_backing_servers", lambda: {"rabbitmq"})
    monkeypatch.setattr(conftest, "other_test_runs", lambda: [4242])
    lines: list[str] = []
    conftest.pytest_sessionfinish(_session(set(), lines))
    assert stops == []
    assert "other test runs use them: pids 4242" in lines[0]


def test_other_test_runs_sees_a_pytest_process(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "cmdline").write_bytes(b"/repo/.venv/bin/python\0-m\0pytest\0-q\0")
    (proc / "4243").mkdir()
    (proc / "4243" / "cmdline").write_bytes(b"/usr/bin/sleep\0300\0")
    assert conftest.other_test_runs(proc) == [4242]


def test_a_phase_with_more_to_come_and_an_xdist_worker_leave_them(
        monkeypatch: pytest.MonkeyPatch, stops: list[list[str]]) -> None:
    """`make test`'s runner (tests/phases.py) stops them after its last phase; an xdist
    worker's run is a part of its main process's, which stops them."""
    monkeypatch.setattr(conftest, "running_backing_servers", lambda: {"postgresql"})
    lines: list[str] = []
    monkeypatch.setenv(phases.PHASE_ENV, "1/2")
    conftest.pytest_sessionfinish(_session(set(), lines))
    monkeypatch.delenv(phases.PHASE_ENV)
    worker = _session(set(), lines)
    worker.config.workerinput = {"workerid": "gw0"}
    conftest.pytest_sessionfinish(worker)
    assert stops == [] and lines == []
