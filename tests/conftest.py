"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from novalet.image import testimage
from novalet.image.testimage import builder
from tests import phases, xdist_progress
# The hooks that pick the tests of a `make test` phase (--phase):
from tests.phases import (pytest_addoption, pytest_collection_modifyitems,  # noqa: F401
                          pytest_terminal_summary)

REPO = Path(__file__).resolve().parents[1]
BACKING_SCRIPT = REPO / "scripts" / "backing-services.sh"
BACKING_PIDFILES = {"rabbitmq": "rabbitmq/rabbit.pid",
                    "postgresql": "postgresql/data/postmaster.pid",
                    "mariadb": "mariadb/run/mysqld.pid"}
"""Where scripts/backing-services.sh's servers record their pids, under its data dir."""
_BACKING_BEFORE = pytest.StashKey[set[str]]()


def running_backing_servers(directory: Path | None = None) -> set[str]:
    """The backing servers (of scripts/backing-services.sh) whose recorded pid is alive."""
    directory = directory or Path(os.environ.get("NOVALET_BACKING_DIR",
                                                 REPO / ".state" / "backing"))
    running = set()
    for name, relative in BACKING_PIDFILES.items():
        try:
            first = (directory / relative).read_text().split("\n", 1)[0].strip()
            os.kill(int(first), 0)
        except PermissionError:  # alive, another user's (the server's own)
            running.add(name)
        except (OSError, ValueError):
            continue
        else:
            running.add(name)
    return running


def other_test_runs(proc: Path = Path("/proc")) -> list[int]:
    """Pids of other pytest runs (they may be using the servers this one started)."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), os.getppid()):
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"pytest") or b"/pytest" in arg for arg in argv[:3]):
            found.append(int(entry.name))
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BACKING_BEFORE] = running_backing_servers()


class StillRunning:
    """Says on the terminal which tests still run, every `every` seconds past the
    first `after`, so a long test or fixture (a real guest, the backing servers, the
    fuzz runs) is not a silent stretch. It writes to its own copy of the terminal's
    file descriptor: while a test runs, pytest's capture holds fd 1. Several tests may
    run at once (pytest-xdist's workers report to the main process, which watches)."""

    def __init__(self, fd: int, after: float = 60.0, every: float = 60.0) -> None:
        self.fd = fd
        self.after = after
        self.every = every
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}  # nodeid -> when it started
        self._next: dict[str, float] = {}  # nodeid -> when to name it (again)
        self._mid_line = True  # the terminal may be in a progress line: end it first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="still-running",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self.fd)

    def started(self, nodeid: str, now: float | None = None) -> None:
        started = time.monotonic() if now is None else now
        with self._lock:
            self._running[nodeid] = started
            self._next[nodeid] = started + self.after

    def finished(self, nodeid: str) -> None:
        with self._lock:
            self._running.pop(nodeid, None)
            self._next.pop(nodeid, None)

    def wrote(self) -> None:
        """pytest wrote to the terminal (a path, a result): the next notice starts a
        line."""
        self._mid_line = True

    def notices(self, now: float) -> str:
        """The lines to write now: one for each test past its time. The first ends
        the progress line it interrupts, unless only notices came since."""
        lines = []
        with self._lock:
            for nodeid, started in self._running.items():
                if now >= self._next[nodeid]:
                    lines.append(f"    ... still running after {now - started:.0f} s: "
                                 f"{nodeid}\n")
                    self._next[nodeid] = now + self.every
            if not lines:
                return ""
            first = "\n" if self._mid_line else ""
            self._mid_line = False
        return first + "".join(lines)

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self.every)):
            text = self.notices(time.monotonic())
            if text:
                os.write(self.fd, text.encode())


class _WatchedRuns:
    """Tells the watcher which tests start and end, from the log hooks: pytest-xdist's
    main process gets those from its workers too (a worker's fd 1 is no terminal)."""

    def __init__(self, watcher: StillRunning, whole_lines: bool) -> None:
        self.watcher = watcher
        self.whole_lines = whole_lines  # results are written a line at a time

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.watcher.started(nodeid)
        if not self.whole_lines:
            self.watcher.wrote()

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.watcher.finished(nodeid)

    def pytest_runtest_logreport(self) -> None:
        if not self.whole_lines:
            self.watcher.wrote()


_STILL_RUNNING = pytest.StashKey[StillRunning]()


@pytest.hookimpl(trylast=True)  # after the terminal reporter is there
def pytest_configure(config: pytest.Config) -> None:
    whole_lines = xdist_progress.register(config)  # per-file lines under xdist too
    # For runs that show per-file progress (make test), not -q or -s ones, and not in
    # an xdist worker. Capture is suspended while plugins configure: fd 1 is the
    # terminal (or CI's log) here.
    if config.get_verbosity() >= 0 and config.option.capture != "no" \
            and not hasattr(config, "workerinput"):
        every = float(os.environ.get("NOVALET_STILL_RUNNING_SECONDS", "60"))
        watcher = config.stash[_STILL_RUNNING] = StillRunning(os.dup(1), after=every,
                                                              every=every)
        config.pluginmanager.register(_WatchedRuns(watcher, whole_lines),
                                      "novalet-still-running")
        watcher.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    watcher = config.stash.get(_STILL_RUNNING, None)
    if watcher is not None:
        watcher.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A test run stops the backing servers it started (RabbitMQ, PostgreSQL, MariaDB:
    some tests start them); servers that ran before the run (`make services`) stay.
    Not an xdist worker (its run is a part) nor a phase of `make test` with more to
    come (tests/phases.py stops them after the last)."""
    if hasattr(session.config, "workerinput") or os.environ.get(phases.PHASE_ENV):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter is not None else print
    stop_started_servers(session.config.stash.get(_BACKING_BEFORE, set()), say)


def stop_started_servers(before: set[str], say: Callable[[str], object]) -> None:
    """Stop the backing servers running now that did not run `before`, unless another
    test run may use them or NOVALET_KEEP_SERVICES is set; `say` what was done."""
    started = sorted(running_backing_servers() - before)
    if not started:
        return
    others = other_test_runs()
    if os.environ.get("NOVALET_KEEP_SERVICES") or others:
        why = f" (other test runs use them: pids {' '.join(map(str, others))})" if others \
            else ""
        say(f"backing servers this run started still run: {', '.join(started)}{why}; "
            "stop them with `make services-stop`")
        return
    result = subprocess.run([str(BACKING_SCRIPT), "stop", *started], capture_output=True,
                            text=True, check=False)
    if result.returncode == 0:
        say(f"stopped the backing servers this test run started: {', '.join(started)} "
            "(`make services` first keeps them running across runs)")
    else:
        say(f"could not stop the backing servers this run started ({', '.join(started)}): "
            f"{result.stderr.strip()}; stop them with `make services-stop`")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit and functional tests must not reach past loopback by accident."""
    if request.node.get_closest_marker("integration"):
        return
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in (
                "localhost", "::1") or host.startswith("/")):
            raise RuntimeError(f"test tried to reach {address}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def guest_image(request: pytest.FixtureRequest) -> Path:
    """The built image, reused while this package's recipe is unchanged."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    cache = Path(request.config.cache.mkdir("novalet-testimage"))
    digest = builder.recipe_digest()
    for stale in cache.iterdir():
        if stale.is_dir() and stale.name not in (digest, "debs"):
            shutil.rmtree(stale, ignore_errors=True)
    output = cache / digest / f"{testimage.IMAGE_NAME}.qcow2"
    started = time.monotonic()
    testimage.build_test_image(output, progress=lambda line: print(line, file=sys.stderr),
                               cache_dir=cache / "debs")
    print(f"test image ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return output
