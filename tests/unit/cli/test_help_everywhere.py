"""Every `novalet` command has a useful --help (issue 14, item 10): a description, help
on every option, and the top-level help says where to start and how to stop."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from novalet.cli.main import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_command_has_a_description_and_help_on_every_option() -> None:
    commands = list(_commands(build_parser()))
    assert len(commands) > 20
    for path, parser in commands:
        name = " ".join(("novalet", *path))
        assert parser.description and len(parser.description) > 10, name
        for action in parser._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, f"{name} {action.option_strings}"
            assert action.metavar is None or action.metavar.upper() == action.metavar, \
                f"{name}: metavar {action.metavar}"


def test_every_help_runs(capsys: pytest.CaptureFixture[str]) -> None:
    for path, _ in _commands(build_parser()):
        with pytest.raises(SystemExit) as exit_:
            main([*path, "--help"])
        assert exit_.value.code == 0, path
        assert "usage: novalet" in capsys.readouterr().out


def test_top_level_help_says_how_to_start_and_stop(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "novalet up" in out and "Ctrl-C" in out and "novalet down" in out


def test_up_help_names_every_port_it_checks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["up", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for option in ("--port", "--metadata-port", "novncproxy_port", "xvpvncproxy_port",
                   "html5proxy_port", "serialproxy_port", "make up PORT=N"):
        assert option in out, option
