"""The novalet command: help, config sample, db sync, config errors."""

import configparser
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
