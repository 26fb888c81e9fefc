"""`make test` holds the cloud to Tempest: the conformance harness (python -m
tests.conformance, as `make conformance` runs it) with the Nova profile, where
every test on passing-nova.txt must pass. It runs for several minutes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conformance.cloud import REPO

pytestmark = [pytest.mark.integration, pytest.mark.servers]


def test_tempest_compute_passes_every_listed_test(capsys: pytest.CaptureFixture[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "tests.conformance", "--profile", "nova",
                             "--quiet"], cwd=REPO, capture_output=True, text=True)
    summary = result.stdout[result.stdout.rfind("Tempest compute, profile"):]
    with capsys.disabled():  # the counts on the terminal, passed or not
        print(f"\n{summary}", end="")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
