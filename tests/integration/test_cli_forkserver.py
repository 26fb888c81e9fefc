"""tests/cli_forkserver.py: a forked command answers as the `openstack` script does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import cli_forkserver
from tests.integration.conftest import BIN

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("args", [
    ["--version"],
    ["no", "such", "command"],
    ["--os-cloud", "nowhere", "server", "list"],  # a cloud the environment's file lacks
])
def test_a_forked_command_matches_the_script(args: list[str], tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  somewhere:\n    auth:\n      auth_url: http://127.0.0.1:9\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "OS_CLIENT_CONFIG_FILE": str(clouds)}
    script = subprocess.run([str(BIN / "openstack"), *args], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    forked = cli_forkserver.run(args, env, cwd=str(tmp_path))
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        script.returncode, script.stdout, script.stderr)


def test_wait_polls_are_shortened_but_keep_their_other_defaults() -> None:
    def poll(status_f: object, res_id: str, status_field: str = "status",
             sleep_time: float = 5, *, interval: float = 2) -> tuple[str, float, float]:
        return status_field, sleep_time, interval

    cli_forkserver._set_default(poll, "sleep_time", 0.5)
    cli_forkserver._set_default(poll, "interval", 0.25)
    assert poll(None, "x") == ("status", 0.5, 0.25)
