"""The novalet command: help, config sample, db sync and downgrade, config errors."""

import configparser
import sqlite3
from pathlib import Path

import pytest

from novalet import config
from novalet.cli.main import build_parser, load_conf, main


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["up", "--help"], ["manage", "db", "sync", "--help"],
                 ["metadata", "--help"], ["image", "build-test", "--help"],
                 ["config", "sample", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert "usage: novalet" in capsys.readouterr().out


def test_config_sample_is_a_valid_ini_naming_every_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "sample"]) == 0
    text = capsys.readouterr().out
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    for opt in config.OPTIONS:
        assert f"#{opt.name} = " in text
    assert {"api", "database", "identity", "fake", "scheduler"} <= set(parser.sections())


def test_db_sync_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manage", "db", "sync", "--state-dir", str(tmp_path)]) == 0
    assert (tmp_path / "novalet.sqlite").exists()
    assert "newest revision" in capsys.readouterr().out
    assert main(["manage", "db", "sync", "--state-dir", str(tmp_path)]) == 0


def test_db_downgrade_and_a_refused_sync(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert main(["manage", "db", "sync", *state]) == 0
    assert main(["manage", "db", "downgrade", "0013", *state]) == 0
    assert "is at revision 0013." in capsys.readouterr().out
    raw = sqlite3.connect(tmp_path / "novalet.sqlite")  # foreign keys off here
    raw.execute("INSERT INTO fixed_ips (address, network_id, reserved, allocated, leased, "
                "created_at) VALUES ('10.99.0.1', 999, 0, 0, 0, '2026-01-01')")
    raw.commit()
    raw.close()
    assert main(["manage", "db", "sync", *state]) == 1
    assert "fixed_ips row 1 (no networks row)" in capsys.readouterr().err


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    conf_file = tmp_path / "novalet.conf"
    conf_file.write_text("[DEFAULT]\nhost = h1\n[api]\nport = 9000\nlisten = 0.0.0.0\n")
    args = build_parser().parse_args(["up", "--config-file", str(conf_file), "--port", "9100"])
    conf = load_conf(args)
    assert conf.get("api", "port") == 9100
    assert conf.get("DEFAULT", "host") == "h1"
    assert conf.public_url == "http://127.0.0.1:9100"


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf_file = tmp_path / "novalet.conf"
    conf_file.write_text("[api]\nport = eighty\n")
    assert main(["up", "--config-file", str(conf_file)]) == 2
    assert "[api] port" in capsys.readouterr().err
    conf_file.write_text("[api]\nportt = 80\n")
    assert main(["up", "--config-file", str(conf_file)]) == 2
    assert "unknown option [api] portt" in capsys.readouterr().err
    assert main(["up", "--config-file", str(tmp_path / "missing.conf")]) == 2
