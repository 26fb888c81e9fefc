"""`novalet image build-test`: arguments, where the image goes, and how failures read."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from novalet.image.testimage import builder, cli
from novalet.image.testimage.commands import ToolMissing


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="novalet")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, bool]]:
    """Calls to the builder, which writes three small files instead of building."""
    calls: list[tuple[Path, bool]] = []

    def fake_build(output: Path, progress: Any = print, *, force: bool = False) -> Path:
        calls.append((output, force))
        output.parent.mkdir(parents=True, exist_ok=True)
        for path in (output, builder.kernel_path(output), builder.ramdisk_path(output)):
            path.write_bytes(bytes(1024 * 1024))
        return output

    monkeypatch.setattr(builder, "build_test_image", fake_build)
    return calls


def test_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse("image", "build-test", "--help")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--output PATH" in out and "--force" in out and "--state-dir DIR" in out


def test_default_output_is_in_the_state_dir(builds: list[tuple[Path, bool]], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse("image", "build-test", "--state-dir", str(tmp_path))) == 0

    assert builds == [(tmp_path.resolve() / "images/novalet-tiny.qcow2", False)]
    out = capsys.readouterr().out
    assert "qcow2   1.0 MiB" in out and "novalet-tiny.vmlinuz" in out


def test_state_dir_comes_from_the_config_file(builds: list[tuple[Path, bool]],
                                              tmp_path: Path) -> None:
    conf = tmp_path / "novalet.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n")

    assert cli.run(parse("image", "build-test", "--config-file", str(conf))) == 0
    assert builds[0][0] == tmp_path.resolve() / "state/images/novalet-tiny.qcow2"


def test_output_and_force_are_passed_on(builds: list[tuple[Path, bool]], tmp_path: Path) -> None:
    output = tmp_path / "elsewhere/tiny.qcow2"
    assert cli.run(parse("image", "build-test", "--output", str(output), "--force")) == 0
    assert builds == [(output, True)]


def test_a_build_error_is_one_clear_line_and_status_1(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    def missing(output: Path, progress: Any = print, *, force: bool = False) -> Path:
        raise ToolMissing(what="The program mkfs.vfat is", packages="dosfstools")

    monkeypatch.setattr(builder, "build_test_image", missing)

    assert cli.run(parse("image", "build-test", "--output", str(tmp_path / "x.qcow2"))) == 1
    assert capsys.readouterr().err == ("novalet: The program mkfs.vfat is missing on this host; "
                                       "install with: apt-get install dosfstools\n")


def test_a_bad_config_file_is_status_2(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse("image", "build-test", "--config-file", str(tmp_path / "none"))) == 2
    assert "cannot read configuration file" in capsys.readouterr().err
