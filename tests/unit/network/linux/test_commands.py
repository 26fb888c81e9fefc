"""The command door: namespaces, stdin, failures, and reading processes from /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from novalet.network.linux.commands import CommandFailed, CommandRunner, ProgramMissing


def test_programs_run_in_the_named_namespace_through_nsenter() -> None:
    assert CommandRunner().wrap(["nft", "-f", "-"]) == ["nft", "-f", "-"]
    assert CommandRunner(netns="lab").wrap(["nft", "-f", "-"]) == [
        "nsenter", "--net=/run/netns/lab", "--", "nft", "-f", "-"]


async def test_stdin_reaches_the_program(real_programs: None) -> None:
    result = await CommandRunner().run(["cat"], input="table ip x\n")
    assert result.stdout == "table ip x\n" and result.returncode == 0


async def test_a_failure_quotes_the_error_output(real_programs: None) -> None:
    with pytest.raises(CommandFailed, match=r"sh failed \(exit status 3\): no good"):
        await CommandRunner().run(["sh", "-c", "echo no good >&2; exit 3"])
    result = await CommandRunner().run(["sh", "-c", "exit 3"], check=False)
    assert result.returncode == 3


async def test_a_missing_program_names_its_package(real_programs: None) -> None:
    runner = CommandRunner()
    runner_path = os.environ.get("PATH")
    os.environ["PATH"] = "/nonexistent"
    try:
        with pytest.raises(ProgramMissing, match="apt-get install nftables"):
            await runner.run(["nft", "list", "ruleset"])
    finally:
        os.environ["PATH"] = runner_path or ""


def test_cmdline_reads_proc_and_ignores_zombies(tmp_path: Path) -> None:
    runner = CommandRunner(proc_root=tmp_path)
    (tmp_path / "10").mkdir()
    (tmp_path / "10" / "stat").write_text("10 (dns masq) S 1 10 10 0")
    (tmp_path / "10" / "cmdline").write_bytes(b"dnsmasq\0--port=0\0")
    (tmp_path / "11").mkdir()
    (tmp_path / "11" / "stat").write_text("11 (dnsmasq) Z 1 11 11 0")
    (tmp_path / "11" / "cmdline").write_bytes(b"")
    assert runner.cmdline(10) == ["dnsmasq", "--port=0"]
    assert runner.cmdline(11) is None
    assert runner.cmdline(12) is None


def test_signal_reports_a_missing_process() -> None:
    assert CommandRunner().signal(2 ** 22 + 12345, 0) is False
    assert CommandRunner().signal(os.getpid(), 0) is True
