"""The command door itself: output, failures, timeouts, missing programs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from novalet.virt.qemu.commands import (CommandFailed, CommandRunner, CommandTimedOut,
                                        ProgramMissing)

pytestmark = pytest.mark.usefixtures("real_programs")


async def test_output_and_status() -> None:
    result = await CommandRunner().run(["sh", "-c", "echo out; echo err >&2"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")


async def test_a_failure_quotes_the_error_output() -> None:
    with pytest.raises(CommandFailed, match=r"sh failed \(exit status 3\): broken"):
        await CommandRunner().run(["sh", "-c", "echo broken >&2; exit 3"])
    result = await CommandRunner().run(["sh", "-c", "exit 3"], check=False)
    assert result.returncode == 3


@pytest.mark.serial  # timed
async def test_a_timeout_kills_the_program_and_what_it_started(tmp_path: Path) -> None:
    child = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(CommandTimedOut, match="did not finish within 0.3 seconds"):
        await CommandRunner().run(["sh", "-c", f"sleep 30 & echo $! > {child}; wait"],
                                  timeout=0.3)
    assert time.monotonic() - started < 5
    pid = int(child.read_text())
    for _ in range(100):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.01)
    else:
        raise AssertionError(f"sleep {pid} outlived the timeout")


async def test_a_missing_program_names_its_package() -> None:
    with pytest.raises(ProgramMissing, match="qemu-img is not installed"):
        await CommandRunner().run(["/nonexistent/qemu-img", "info"])


async def test_programs_run_in_their_own_session() -> None:
    result = await CommandRunner().run(["sh", "-c", "ps -o sid= -p $$"])
    assert int(result.stdout.strip()) != os.getsid(0)
