"""`make test` holds the cloud to Tempest: the conformance harness (python -m
tests.conformance, as `make conformance` runs it) with the Nova profile, where
every test on passing-nova.txt must pass, and with the network profile
(tempest.api.network's networks, subnets, ports, security groups, floating IPs,
routers' extensions), where every test on passing-network.txt must. Each runs for
minutes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conformance.cloud import REPO

pytestmark = [pytest.mark.integration, pytest.mark.servers]


@pytest.mark.parametrize("profile, api", [("nova", "compute"), ("network", "network")])
def test_tempest_passes_every_listed_test(profile: str, api: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "tests.conformance", "--profile", profile,
                             "--quiet"], cwd=REPO, capture_output=True, text=True)
    summary = result.stdout[result.stdout.rfind(f"Tempest {api}, profile"):]
    with capsys.disabled():  # the counts on the terminal, passed or not
        print(f"\n{summary}", end="")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
