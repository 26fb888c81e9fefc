"""What a newcomer reads first (issue 14, item 10): `make help` and the README say how
to pick another port, how to reach the openstack client and how to take everything
down; `make test` shows honest per-file progress."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str) -> str:
    return subprocess.run(["make", "-s", "-C", str(REPO), *args], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def test_make_help_documents_down_and_the_port_variables() -> None:
    text = _make("help")
    for target in ("up", "down", "test", "services-stop"):
        assert any(line.startswith(f"{target}\t") for line in text.splitlines()), target
    assert "PORT=N" in text and "CONFIG=FILE" in text
    assert "novncproxy_port" in text and "[metadata] port" in text


def test_make_up_passes_port_and_config() -> None:
    lines = _make("-n", "up", "PORT=8780", "CONFIG=/tmp/n.conf").splitlines()
    check = next(i for i, line in enumerate(lines) if "novalet up --check-ports" in line)
    build = next(i for i, line in enumerate(lines) if "novalet image build-test" in line)
    up = next(i for i, line in enumerate(lines) if "novalet up --state-dir" in line)
    assert check < build < up  # the ports are checked before anything is made
    assert "--port 8780 --config-file /tmp/n.conf" in lines[check]
    assert "--port 8780 --config-file /tmp/n.conf" in lines[up]


def test_make_down_runs_novalet_down_and_stops_backing_servers() -> None:
    text = _make("-n", "down", "STATE=/tmp/some-state")
    assert "novalet down --state-dir /tmp/some-state" in text
    assert "backing-services.sh stop" in text


def test_make_test_shows_a_count_per_file_and_the_slowest_tests() -> None:
    text = _make("-n", "test")  # tests/phases.py passes these to each phase's pytest
    pytest_line = next(line for line in text.splitlines() if "-m tests.phases" in line)
    assert "console_output_style=count" in pytest_line and "--durations=15" in pytest_line
    assert " -q" not in pytest_line  # -q hides the per-file lines


def test_readme_starts_with_the_two_commands_and_says_what_a_newcomer_needs() -> None:
    text = (REPO / "README.md").read_text()
    assert [line.split("#")[0].strip() for line in text.splitlines()[2:4]] == [
        "make up", "make test"]
    assert "export PATH=$PWD/.venv/bin:$PATH" in text
    assert "make up PORT=" in text and "make down" in text and "novalet down" in text


def test_every_make_target_the_readme_names_exists() -> None:
    """Behaviour behind the README's text: each `make X` it names is a target that
    `make help` lists (and so the Makefile has)."""
    named = set(re.findall(r"\bmake ([a-z][a-z-]*)", (REPO / "README.md").read_text()))
    listed = {line.split("\t")[0] for line in _make("help").splitlines() if "\t" in line}
    assert named and named <= listed, named - listed


def test_every_novalet_command_the_readme_shows_parses() -> None:
    """Each `novalet ...` the README shows, optional flags included, is accepted by the
    CLI's parser (a renamed command or flag fails here, not for a newcomer)."""
    from novalet.cli.main import build_parser
    shown = re.findall(r"`novalet ([^`]*)`", (REPO / "README.md").read_text())
    commands = [["8774" if word == "N" else word  # the number placeholder
                 for word in re.sub(r"\[([^\]]*)\]", r"\1", text).split()]
                for text in shown if "--help" not in text]
    assert ["down", "--state-dir", "DIR"] in commands and len(commands) >= 8
    for argv in commands:
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"README shows `novalet {' '.join(argv)}`, which the CLI refuses")
