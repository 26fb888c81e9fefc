"""Running host programs for the test-image build: missing tools name their package."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from novalet.image.testimage import commands
from novalet.image.testimage.commands import BuildError, CommandFailed, Runner, ToolMissing


@pytest.fixture
def empty_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A PATH (sbin fallbacks included) where only the given fake programs exist."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(commands, "_EXTRA_PATH", ())
    return tmp_path


def _install(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)


def test_every_program_is_known_with_its_debian_package() -> None:
    assert commands.TOOL_PACKAGES["mkfs.vfat"] == "dosfstools"
    assert commands.TOOL_PACKAGES["mcopy"] == "mtools"
    assert commands.TOOL_PACKAGES["qemu-img"] == "qemu-utils"
    assert commands.TOOL_PACKAGES["sfdisk"] == "fdisk"
    assert commands.HOST_FILES["/usr/lib/syslinux/mbr/mbr.bin"] == "syslinux-common"


def test_a_missing_program_names_the_package_to_install(empty_path: Path) -> None:
    with pytest.raises(ToolMissing) as error:
        commands.find_tool("mkfs.vfat")
    assert error.value.message == ("The program mkfs.vfat is missing on this host; install "
                                   "with: apt-get install dosfstools")


def test_check_host_names_every_missing_package_once(empty_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _install(empty_path, *(t for t in commands.TOOL_PACKAGES if t not in ("apt-get", "apt-cache",
                                                                           "mcopy")))
    monkeypatch.setattr(commands, "HOST_FILES", {str(empty_path / "mbr.bin"): "syslinux-common"})

    with pytest.raises(ToolMissing) as error:
        commands.check_host()

    message = error.value.message
    assert message.startswith("apt-cache, apt-get, mcopy, ")
    assert message.endswith("are missing on this host; install with: "
                            "apt-get install apt mtools syslinux-common")


def test_check_host_passes_when_everything_is_there(empty_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _install(empty_path, *commands.TOOL_PACKAGES, "mbr.bin")
    monkeypatch.setattr(commands, "HOST_FILES", {str(empty_path / "mbr.bin"): "syslinux-common"})
    commands.check_host()


def test_runner_returns_output_and_raises_with_stderr_on_failure(
        empty_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(empty_path, "mke2fs")
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append(argv)
        if "-d" in argv:
            return subprocess.CompletedProcess(argv, 1, b"", b"mke2fs: No space left\n")
        return subprocess.CompletedProcess(argv, 0, b"done\n", b"")

    monkeypatch.setattr(subprocess, "run", fake_run)

    assert Runner().run(["mke2fs", "-V"]) == "done\n"
    assert calls[0] == [str(empty_path / "mke2fs"), "-V"]
    with pytest.raises(CommandFailed) as error:
        Runner().run(["mke2fs", "-d", "tree", "root.img"])
    assert error.value.message == "mke2fs -d tree root.img exited with status 1: " \
                                  "mke2fs: No space left"
    assert isinstance(error.value, BuildError)


def test_runner_turns_a_timeout_into_a_build_error(empty_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _install(empty_path, "qemu-img")

    def slow(argv: list[str], **kwargs: Any) -> None:
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(BuildError, match="qemu-img did not finish within 5 s"):
        Runner().run(["qemu-img", "convert"], timeout=5)
