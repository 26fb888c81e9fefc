"""`make test` in two phases (python -m tests.phases): first the unit and functional
tests on several processes (pytest-xdist, one test file per process at a time), then
on one process the tests that need the machine to themselves: the integration,
multihost and conformance ones (real guests, real ports, bridges and firewall
tables) and those marked `serial` (they time the cloud's answers).

Every phase runs, unless the pytest arguments stop at a failure (-x, --exitfirst,
--maxfail: then no later phase runs); the exit status fails when any phase failed.
The backing servers a phase started stay for the next phase and are stopped once,
after the last (tests/conftest.py's rules). The pytest hooks here pick a phase's
tests: `--phase parallel` or `--phase serial`; without it a run has every test."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ALONE_DIRS = ("integration", "multihost", "conformance")
"""Test directories whose tests are all serial: real guests and host networking."""
PHASE_ENV = "NOVALET_TEST_PHASE"
"""Set in a phase's environment ("1/2"): the run goes on after it, so it leaves the
backing servers it started to the runner."""
COUNTS_ENV = "NOVALET_TEST_PHASE_COUNTS"
"""A file a phase writes its result counts to (JSON), for the runner's total line."""
COUNTED = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
INTERRUPTED = (2, 3, 4)
"""pytest's exit codes for Ctrl-C, an internal error and a usage error: no later
phase runs (1 = tests failed, 5 = no test of this phase was selected)."""


# --- the pytest side: which tests a phase runs -------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--phase", choices=("parallel", "serial"), default=None,
                     help="run only the tests of one `make test` phase: parallel (may "
                          "share the CPU with other workers) or serial (the rest)")


def runs_alone(item: pytest.Item) -> bool:
    """Whether the test must not share the machine with other tests."""
    path = Path(item.path)
    in_alone_dir = TESTS in path.parents and path.relative_to(TESTS).parts[0] in ALONE_DIRS
    return in_alone_dir or item.get_closest_marker("serial") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # `-m serial` selects them too
        if runs_alone(item) and item.get_closest_marker("serial") is None:
            item.add_marker(pytest.mark.serial)
    phase = config.getoption("phase")
    if phase is None:
        return
    keep = [item for item in items if runs_alone(item) == (phase == "serial")]
    dropped = [item for item in items if runs_alone(item) != (phase == "serial")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    path = os.environ.get(COUNTS_ENV)
    if path and not hasattr(terminalreporter.config, "workerinput"):
        stats = terminalreporter.stats
        Path(path).write_text(json.dumps({key: len(stats.get(key, [])) for key in COUNTED}))


# --- the runner ----------------------------------------------------------------------

def stops_at_failure(args: Sequence[str]) -> bool:
    return any(arg in ("-x", "--exitfirst") or arg.startswith("--maxfail") for arg in args)


def phases(workers: str, args: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(what it runs, pytest's command line) for each phase."""
    pytest_cmd = [sys.executable, "-m", "pytest"]
    if importlib.util.find_spec("xdist") is None:
        parallel = ("unit and functional tests (on one process: pytest-xdist is not "
                    "installed; `make install`)", [*pytest_cmd, "--phase", "parallel"])
    else:
        parallel = (f"unit and functional tests on {workers} processes",
                    [*pytest_cmd, "--phase", "parallel", "-n", workers, "--dist", "loadfile"])
    serial = ("integration, multihost, conformance and serial-marked tests, one at a time",
              [*pytest_cmd, "--phase", "serial"])
    return [(what, [*cmd, *args]) for what, cmd in (parallel, serial)]


def total_line(counts: list[dict[str, int]]) -> str:
    """pytest's closing line for the whole run: "total: 2440 passed, 1 failed"."""
    summed = {key: sum(c.get(key, 0) for c in counts) for key in COUNTED}
    words = {"error": "errors"}
    parts = [f"{n} {words.get(key, key)}" for key, n in summed.items()
             if n or key in ("passed", "failed")]
    return "total: " + ", ".join(parts)


def outcome(codes: list[int]) -> int:
    """The run's exit status: the first failing phase's, 5 if no phase had a test."""
    failing = [code for code in codes if code not in (0, 5)]
    if failing:
        return failing[0]
    return 5 if codes and all(code == 5 for code in codes) else 0


def run(workers: str, args: Sequence[str],
        call: Callable[[list[str], dict[str, str]], int] | None = None) -> int:
    from tests import conftest  # its backing-server rules
    call = call or (lambda cmd, env: subprocess.call(cmd, env=env))
    before = conftest.running_backing_servers()
    plan = phases(workers, args)
    codes: list[int] = []
    counts: list[dict[str, int]] = []
    with tempfile.TemporaryDirectory(prefix="novalet-test-phases-") as scratch:
        try:
            for number, (what, cmd) in enumerate(plan, 1):
                print(f"==> phase {number} of {len(plan)}: {what}\n    {' '.join(cmd)}",
                      flush=True)
                result = Path(scratch) / f"phase-{number}.json"
                env = {**os.environ, PHASE_ENV: f"{number}/{len(plan)}",
                       COUNTS_ENV: str(result)}
                codes.append(call(cmd, env))
                if result.exists():
                    counts.append(json.loads(result.read_text()))
                if codes[-1] in INTERRUPTED or codes[-1] == 1 and stops_at_failure(args):
                    print(f"==> phase {number} ended with exit status {codes[-1]}: "
                          "no later phase runs", flush=True)
                    break
        finally:
            conftest.stop_started_servers(before, print)
    print(f"==> exit status of each phase: {' '.join(map(str, codes))}")
    print(total_line(counts), flush=True)
    return outcome(codes)


def main(argv: Sequence[str]) -> int:
    """python -m tests.phases [--workers N] [--] [pytest arguments...]"""
    args = list(argv)
    workers = os.environ.get("TEST_WORKERS", "2")
    if args[:1] == ["--workers"]:
        workers, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    # Ctrl-C reaches the phase's pytest too (one process group): let it end its run
    # and report; this process then stops what the run started.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    return run(workers, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
