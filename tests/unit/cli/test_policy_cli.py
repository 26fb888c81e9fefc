"""`novalet manage policy-sample` and the startup check of the policy file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from novalet import policy
from novalet.cli.main import main


def test_policy_sample_names_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manage", "policy-sample"]) == 0
    out = capsys.readouterr().out
    rules = yaml.safe_load("\n".join(line[1:] for line in out.splitlines()
                                     if line.startswith('#"')))
    assert set(rules) == set(policy.RULES)
    assert rules["os_compute_api:servers:create"] == "rule:project_member_or_admin"


def test_bad_policy_file_stops_startup(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policy.yaml").write_text('"os_compute_api:servers:show": "role:admin or"\n')
    try:
        assert main(["up", "--state-dir", str(tmp_path), "--driver", "fake"]) == 2
    finally:
        policy.configure(None)
    err = capsys.readouterr().err
    assert f"{tmp_path / 'policy.yaml'} line 1" in err
