"""Choosing KVM or TCG without ever hanging."""

from __future__ import annotations

from pathlib import Path

import pytest

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu import accel
from novalet.virt.qemu.commands import CommandResult, CommandTimedOut
from tests.unit.virt.qemu.fakes import FakeRunner


@pytest.fixture
def kvm_host(tmp_path: Path) -> tuple[Path, Path]:
    dev = tmp_path / "kvm"
    dev.write_text("")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu vme sse2 vmx avx\n")
    return dev, cpuinfo


async def detect(virt_type: str, runner: FakeRunner, host: tuple[Path, Path]) -> str:
    return await accel.detect(virt_type, runner, "qemu-system-x86_64", dev=host[0],
                              cpuinfo=host[1])


def probe_exits(runner: FakeRunner, status: int) -> None:
    runner.results["qemu-system-x86_64"] = CommandResult((), status, "", "", 0.1)


async def test_qemu_means_tcg_without_probing(runner: FakeRunner,
                                              kvm_host: tuple[Path, Path]) -> None:
    assert await detect("qemu", runner, kvm_host) == "tcg"
    assert runner.calls == []


async def test_auto_uses_kvm_when_the_probe_guest_exits_by_itself(
        runner: FakeRunner, kvm_host: tuple[Path, Path]) -> None:
    probe_exits(runner, 1)
    assert await detect("auto", runner, kvm_host) == "kvm"
    argv = runner.calls[0]
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert "isa-debug-exit,iobase=0xf4,iosize=0x04" in argv


async def test_a_probe_that_hangs_means_tcg(runner: FakeRunner,
                                            kvm_host: tuple[Path, Path]) -> None:
    async def hang(argv: object, *, timeout: float = 0, check: bool = True,
                   cwd: str | None = None) -> CommandResult:
        assert timeout == accel.PROBE_TIMEOUT
        raise CommandTimedOut(program="qemu-system-x86_64", timeout=timeout)
    runner.run = hang  # type: ignore[method-assign]
    assert await detect("auto", runner, kvm_host) == "tcg"


async def test_a_probe_that_fails_means_tcg(runner: FakeRunner,
                                            kvm_host: tuple[Path, Path]) -> None:
    probe_exits(runner, 134)
    assert await detect("auto", runner, kvm_host) == "tcg"


async def test_no_vmx_or_svm_flag_means_tcg_without_probing(
        runner: FakeRunner, kvm_host: tuple[Path, Path]) -> None:
    kvm_host[1].write_text("flags\t\t: fpu vme sse2 hypervisor\n")
    assert await detect("auto", runner, kvm_host) == "tcg"
    assert runner.calls == []


async def test_no_dev_kvm_means_tcg(runner: FakeRunner, kvm_host: tuple[Path, Path]) -> None:
    kvm_host[0].unlink()
    assert await detect("auto", runner, kvm_host) == "tcg"


async def test_kvm_required_but_unusable_is_an_error(runner: FakeRunner,
                                                     kvm_host: tuple[Path, Path]) -> None:
    kvm_host[1].write_text("flags\t\t: fpu\n")
    with pytest.raises(accel.AccelUnavailable, match="no vmx or svm flag"):
        await detect("kvm", runner, kvm_host)


async def test_unknown_virt_type(runner: FakeRunner, kvm_host: tuple[Path, Path]) -> None:
    with pytest.raises(VirtDriverError, match="virt_type must be one of"):
        await detect("xen", runner, kvm_host)


def test_the_probe_sector_is_a_boot_sector() -> None:
    assert len(accel.PROBE_SECTOR) == 512 and accel.PROBE_SECTOR.endswith(b"\x55\xaa")
