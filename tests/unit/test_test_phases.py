"""`make test` in phases (tests/phases.py): the unit and functional tests on several
processes, then the rest one at a time; every test in exactly one phase, every phase
run, the run failing if one failed, the backing servers stopped once at the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import conftest, phases

REPO = Path(__file__).resolve().parents[2]


class Item:
    """What the phase hooks read of a collected test."""

    def __init__(self, path: str, *marks: str) -> None:
        self.path = REPO / path.split("::")[0]
        self.nodeid = path
        self.marks = set(marks)

    def get_closest_marker(self, name: str) -> object:
        return name if name in self.marks else None

    def add_marker(self, mark: pytest.MarkDecorator) -> None:
        self.marks.add(mark.name)


def _phase(phase: str | None, items: list[Item]) -> list[str]:
    deselected: list[Any] = []
    config = SimpleNamespace(getoption=lambda name: phase, hook=SimpleNamespace(
        pytest_deselected=lambda items: deselected.extend(items)))
    kept: list[Any] = list(items)
    phases.pytest_collection_modifyitems(config, kept)  # type: ignore[arg-type]
    assert len(kept) + len(deselected) == len(items)
    return [item.nodeid for item in kept]


def test_every_test_is_in_exactly_one_phase() -> None:
    def items() -> list[Item]:
        return [Item("tests/unit/api/test_x.py::test_a"),
                Item("tests/unit/api/test_x.py::test_timed", "serial"),
                Item("tests/functional/test_y.py::test_b"),
                Item("tests/integration/test_z.py::test_c", "integration"),
                Item("tests/multihost/test_m.py::test_d"),
                Item("tests/conformance/test_tempest.py::test_e")]
    every = _phase(None, items())
    parallel = _phase("parallel", items())
    serial = _phase("serial", items())
    assert parallel == ["tests/unit/api/test_x.py::test_a", "tests/functional/test_y.py::test_b"]
    assert sorted(parallel + serial) == sorted(every) and len(every) == 6
    marked = items()
    _phase(None, marked)  # `-m serial` selects the same tests
    assert [i.nodeid for i in marked if "serial" in i.marks] == serial


def test_the_phase_option_selects_in_a_real_collection() -> None:
    """The hooks are wired into pytest (tests/conftest.py): the timed tests and the
    whole integration directory are in the serial phase, and only they."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "--phase", "serial",
         "tests/unit/api/test_edge_limits.py", "tests/integration/test_quota_cli.py"],
        cwd=REPO, capture_output=True, text=True, timeout=300).stdout
    selected = {line.split("[")[0] for line in out.splitlines() if "::" in line}
    assert selected == {
        "tests/unit/api/test_edge_limits.py::test_depth_check_of_a_largest_body_is_fast",
        "tests/integration/test_quota_cli.py::test_quota_show_and_set"}, out


class Phases:
    """Stands in for the phases' pytest processes: each returns the next exit code
    and writes its counts, as the real ones do."""

    def __init__(self, *codes: int) -> None:
        self.codes = list(codes)
        self.commands: list[list[str]] = []

    def __call__(self, cmd: list[str], env: dict[str, str]) -> int:
        self.commands.append(cmd)
        assert env[phases.PHASE_ENV] == f"{len(self.commands)}/2"
        code = self.codes.pop(0)
        Path(env[phases.COUNTS_ENV]).write_text(json.dumps(
            {"passed": 10, "failed": int(code == 1), "skipped": 1}))
        return code


@pytest.fixture
def stopped(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The `before` sets the runner's cleanup was called with."""
    calls: list[set[str]] = []
    monkeypatch.setattr(conftest, "running_backing_servers", lambda: {"rabbitmq"})
    monkeypatch.setattr(conftest, "stop_started_servers",
                        lambda before, say: calls.append(before))
    return calls


def test_both_phases_run_and_a_failure_in_one_fails_the_run(
        stopped: list[set[str]], capsys: pytest.CaptureFixture[str]) -> None:
    fake = Phases(1, 0)
    assert phases.run("2", ["-k", "fuzz"], call=fake) == 1
    first, second = fake.commands
    assert first[first.index("--phase") + 1] == "parallel" and "-n" in first
    assert first[first.index("-n") + 1] == "2" and first[-2:] == ["-k", "fuzz"]
    assert second[second.index("--phase") + 1] == "serial" and "-n" not in second
    assert second[-2:] == ["-k", "fuzz"]
    assert stopped == [{"rabbitmq"}]  # once, after the last phase, against the first look
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "total: 20 passed, 1 failed, 2 skipped"


def test_exit_first_stops_after_a_failing_phase(stopped: list[set[str]]) -> None:
    fake = Phases(1, 0)
    assert phases.run("2", ["-x"], call=fake) == 1
    assert len(fake.commands) == 1 and stopped == [{"rabbitmq"}]


def test_ctrl_c_in_a_phase_ends_the_run_and_still_stops_the_servers(
        stopped: list[set[str]]) -> None:
    fake = Phases(2, 0)
    assert phases.run("2", [], call=fake) == 2
    assert len(fake.commands) == 1 and stopped == [{"rabbitmq"}]


def test_a_phase_without_tests_is_no_failure(stopped: list[set[str]]) -> None:
    assert phases.run("2", ["-k", "fuzz"], call=Phases(0, 5)) == 0
    assert phases.run("2", ["-k", "nothing"], call=Phases(5, 5)) == 5


def test_make_test_runs_the_phases_with_the_progress_options() -> None:
    text = subprocess.run(["make", "-s", "-n", "-C", str(REPO), "test", "TEST_WORKERS=3",
                           "PYTEST_ARGS=-x -k fuzz"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    line = next(line for line in text.splitlines() if "-m tests.phases" in line)
    assert line.split("-m tests.phases", 1)[1].split() == [
        "--workers", "3", "--", "-o", "console_output_style=count", "--durations=15",
        "-x", "-k", "fuzz"]


def test_main_reads_the_workers_and_the_pytest_arguments(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(phases, "run", lambda workers, args: seen.append((workers, args)) or 0)
    monkeypatch.setattr(phases.signal, "signal", lambda *args: None)
    assert phases.main(["--workers", "3", "--", "-x", "tests/unit"]) == 0
    assert seen == [("3", ["-x", "tests/unit"])]


def test_xdist_progress_writes_a_line_per_file_once_it_is_done() -> None:
    """Under xdist pytest prints only letters: the main process gets a line per file,
    with its letters and the count done, when the file's last test has ended."""
    from tests.xdist_progress import FileProgress
    written: list[str] = []
    reporter = SimpleNamespace(write_line=written.append, _tw=SimpleNamespace(fullwidth=40))
    progress = FileProgress(reporter)
    ids = ["tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t1"]
    progress.pytest_xdist_node_collection_finished(None, ids)
    progress.pytest_xdist_node_collection_finished(None, ids)  # a second worker's
    for nodeid, letter in (("tests/a.py::t1", "."), ("tests/b.py::t1", "F"),
                           ("tests/a.py::t2", "s")):
        progress.letters[nodeid.split("::")[0]] = \
            progress.letters.get(nodeid.split("::")[0], "") + letter
        progress.pytest_runtest_logfinish(nodeid)
    assert written == ["tests/b.py F                       [2/3]",
                       "tests/a.py .s                      [3/3]"]
    assert progress.lines("tests/c.py", "." * 40, 40)[-1].endswith(" [3/3]")
    assert all(len(line) <= 40 for line in progress.lines("tests/c.py", "." * 90, 40))
