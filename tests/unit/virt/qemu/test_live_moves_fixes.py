"""The QEMU driver's live migration through the driver (fake qemu, qemu-img and QMP;
the source's QMP job replaced by a recorder): a guest that arrived but was never
finished is adopted at start, the source mirrors `top` only over the same base,
refuses hostile targets, removes what moved, keeps an early abort, and a
destination retries a port another program took."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from novalet.compute.driver_types import LiveMigrationAborted, MigrationProgress
from novalet.compute.move_payloads import MoveTarget
from novalet.rpc.models import IncompatibleMessage
from novalet.virt.driver import ImageMeta, VirtDriverError
from novalet.virt.qemu import live_moves, migration_ports
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.layout import InstancePaths
from novalet.virt.qemu.live_migration import MigrationControl, Outcome, ProgressSender
from tests.unit.virt.qemu.conftest import make_spec
from tests.unit.virt.qemu.fakes import (FakeProcesses, FakeQmp, FakeRunner, FakeVm, read_stub,
                                        write_stub)


@pytest.fixture(autouse=True)
def _migration_setup(conf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conf.set("qemu", "live_migration_inbound_addr", "127.0.0.1")
    conf.set("qemu", "live_migration_port_range", "49152:49159")
    monkeypatch.setattr(migration_ports, "can_bind", lambda host, port: True)


class RecordedJob:
    """Stands in for SourceMigration: records the target it was given."""

    targets: list[MoveTarget] = []

    def __init__(self, mon: Any, uuid: str, settings: Any, control: MigrationControl,
                 progress: Any) -> None:
        self.control = control
        self.reports = ProgressSender(uuid, progress)  # nothing offered: flush() returns

    async def migrate(self, target: MoveTarget, memory_bytes: int,
                      disk_bytes: list[int]) -> Outcome:
        RecordedJob.targets.append(target)
        return Outcome(0.1, 5)


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> list[MoveTarget]:
    RecordedJob.targets = []
    monkeypatch.setattr(live_moves, "SourceMigration", RecordedJob)
    return RecordedJob.targets


async def no_progress(report: MigrationProgress) -> None:
    return None


def vm_of(processes: FakeProcesses, driver: QemuDriver, uuid: str) -> FakeVm:
    vm = processes.vm_for(InstancePaths(driver.instances_path, uuid).qmp)
    assert vm is not None
    return vm


TARGET = MoveTarget(address="192.0.2.7", memory_port=49152, nbd_port=49153,
                    disks=["root", "eph0"], overlays=["root"])


# --- B1: a guest that arrived is adopted at start, not removed ------------------------

async def test_b1_an_arrived_but_unfinished_guest_is_adopted_at_start(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses) -> None:
    """The source dropped its copy once QEMU said completed; the destination's finish
    failed: a restart used to force-stop the only running copy and delete it."""
    spec = make_spec(image)
    await driver.pre_live_migration(spec, True, False)
    vm = vm_of(processes, driver, spec.uuid)
    vm.status = "running"  # the whole state arrived; finish never ran
    paths = InstancePaths(driver.instances_path, spec.uuid)
    assert paths.spawning.exists()
    await driver.init_host("host-1")  # the compute service starts anew
    assert vm.alive and paths.config.exists() and not paths.spawning.exists()
    assert "nbd-server-stop" in vm.commands and paths.console_record.exists()
    assert await driver.list_instances() == [spec.uuid]
    # start-up recovery must not destroy it as unknown (no record names this host yet)
    assert driver.adopted_at_start() == {spec.uuid}


async def test_b1_a_guest_still_waiting_for_its_state_is_removed_at_start(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses) -> None:
    spec = make_spec(image)
    await driver.pre_live_migration(spec, True, False)
    vm = vm_of(processes, driver, spec.uuid)  # still inmigrate
    await driver.init_host("host-1")
    assert not vm.alive and not (driver.instances_path / spec.uuid).exists()
    assert driver.adopted_at_start() == set()


async def test_b1_an_unfinished_spawn_is_still_removed_at_start(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses) -> None:
    """Only a live migration's directory is adopted, not a spawn that crashed."""
    spec = make_spec(image)
    await driver.spawn(spec)
    paths = InstancePaths(driver.instances_path, spec.uuid)
    paths.spawning.touch()  # as if the service died before the spawn finished
    await driver.init_host("host-1")
    assert not paths.dir.exists()


# --- M1: sync top only over the same base --------------------------------------------

async def test_m1_a_standalone_root_after_a_cold_move_is_mirrored_whole(
        driver: QemuDriver, image: ImageMeta, jobs: list[MoveTarget]) -> None:
    """After a cold move the root has no backing file: `top` would copy only its
    allocated clusters, and the destination's overlay would read the base's old
    bytes where this disk reads zeros."""
    spec = make_spec(image, ephemeral_gb=1)
    await driver.spawn(spec)
    paths = InstancePaths(driver.instances_path, spec.uuid)
    write_stub(paths.disk("disk"), "qcow2", 1 << 30)  # standalone, as a cold move leaves it
    await driver.live_migration(spec.uuid, "host-2", True, no_progress, TARGET)
    assert jobs[-1].overlays == []


async def test_m1_a_root_over_another_base_is_mirrored_whole(
        driver: QemuDriver, image: ImageMeta, jobs: list[MoveTarget]) -> None:
    spec = make_spec(image, ephemeral_gb=1)
    await driver.spawn(spec)
    paths = InstancePaths(driver.instances_path, spec.uuid)
    write_stub(paths.disk("disk"), "qcow2", 1 << 30, str(driver.cache.path / "img-2"), "qcow2")
    await driver.live_migration(spec.uuid, "host-2", True, no_progress, TARGET)
    assert jobs[-1].overlays == []


async def test_m1_a_root_over_the_same_base_is_mirrored_top(
        driver: QemuDriver, image: ImageMeta, jobs: list[MoveTarget]) -> None:
    spec = make_spec(image, ephemeral_gb=1)
    await driver.spawn(spec)
    root = read_stub(InstancePaths(driver.instances_path, spec.uuid).disk("disk"))
    assert root is not None and root["backing"] == str(driver.cache.path / "img-1")
    await driver.live_migration(spec.uuid, "host-2", True, no_progress, TARGET)
    assert jobs[-1].overlays == ["root"] and jobs[-1].disks == ["root", "eph0"]


# --- the source through the driver: refusals and removal -----------------------------

@pytest.mark.parametrize(("target", "refusal"), [
    (MoveTarget(address="192.0.2.7", memory_port=49152, nbd_port=49153,
                disks=["root", "eph0", "config"]), "no such writable disk"),
    (MoveTarget(address="192.0.2.7", memory_port=49152, nbd_port=49153,
                disks=["root"]), "takes no copy of disks \\['eph0'\\]"),
    (MoveTarget(address="192.0.2.7", nbd_port=49153, disks=["root", "eph0"]),
     "gave no migration address"),
    (MoveTarget(address="192.0.2.7", memory_port=49152, disks=["root", "eph0"]),
     "disks without an NBD port"),
])
async def test_hostile_targets_are_refused_and_the_guest_stays(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses,
        jobs: list[MoveTarget], target: MoveTarget, refusal: str) -> None:
    spec = make_spec(image, ephemeral_gb=1)
    await driver.spawn(spec)
    with pytest.raises((VirtDriverError, IncompatibleMessage), match=refusal):
        await driver.live_migration(spec.uuid, "host-2", True, no_progress, target)
    assert jobs == [] and vm_of(processes, driver, spec.uuid).alive
    assert await driver.list_instances() == [spec.uuid] and driver.live.running == {}


async def test_what_moved_is_removed_here(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses,
        jobs: list[MoveTarget]) -> None:
    spec = make_spec(image, ephemeral_gb=1)
    await driver.spawn(spec)
    vm = vm_of(processes, driver, spec.uuid)
    await driver.live_migration(spec.uuid, "host-2", True, no_progress, TARGET)
    assert not vm.alive and not (driver.instances_path / spec.uuid).exists()
    assert await driver.list_instances() == [] and driver.live.running == {}


async def test_leftovers_that_wont_go_fail_nothing(
        driver: QemuDriver, image: ImageMeta, jobs: list[MoveTarget],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Raising would make the conductor roll back the only running copy."""
    spec = make_spec(image, ephemeral_gb=1)
    await driver.spawn(spec)

    async def stuck(paths: InstancePaths) -> None:
        raise VirtDriverError(reason="could not remove it")

    monkeypatch.setattr(driver, "_remove_guest", stuck)
    await driver.live_migration(spec.uuid, "host-2", True, no_progress, TARGET)
    assert "remove them by hand" in caplog.text


async def test_an_abort_before_the_job_starts_sticks(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses,
        jobs: list[MoveTarget]) -> None:
    spec = make_spec(image, ephemeral_gb=1)
    await driver.spawn(spec)
    await driver.live_migration_abort(spec.uuid)  # no 409: the job is about to start
    with pytest.raises(LiveMigrationAborted):
        await driver.live_migration(spec.uuid, "host-2", True, no_progress, TARGET)
    assert jobs == [] and vm_of(processes, driver, spec.uuid).alive
    await driver.live_migration(spec.uuid, "host-2", True, no_progress, TARGET)  # once only
    assert len(jobs) == 1


# --- ports taken between the claim and QEMU's bind ------------------------------------

async def test_a_port_taken_before_qemu_binds_it_is_retried_on_another(
        driver: QemuDriver, image: ImageMeta, qmp: FakeQmp) -> None:
    qmp.taken_ports = {49152, 49154}  # free when claimed, taken when QEMU binds
    target = await driver.pre_live_migration(make_spec(image), True, False)
    assert (target.nbd_port, target.memory_port) == (49153, 49155)


async def test_ports_keep_being_taken_and_the_prepare_fails_cleanly(
        driver: QemuDriver, image: ImageMeta, qmp: FakeQmp) -> None:
    qmp.taken_ports = set(range(49152, 49160))
    spec = make_spec(image)
    with pytest.raises(VirtDriverError, match="in use"):
        await driver.pre_live_migration(spec, True, False)
    assert not Path(driver.instances_path / spec.uuid).exists()
    assert driver.live.ports.held == {}


# --- the destination's ephemeral and swap disks: made empty once ------------------------

async def test_the_incoming_ephemeral_and_swap_disks_are_made_empty_once(
        driver: QemuDriver, image: ImageMeta, runner: FakeRunner) -> None:
    """They used to be made as overlays over a formatted base, then deleted and made
    anew empty (their data, file system included, comes from the source)."""
    spec = make_spec(image, ephemeral_gb=2, swap_mb=256)
    await driver.pre_live_migration(spec, True, False)
    paths = InstancePaths(driver.instances_path, spec.uuid)
    for name, size in (("disk.eph0", 2 << 30), ("disk.swap", 256 << 20)):
        made = [c for c in runner.commands("qemu-img", "create")
                if str(paths.disk(name)) in c]
        assert len(made) == 1, made
        stub = read_stub(paths.disk(name))
        assert stub is not None and stub["backing"] is None and stub["size"] == size
