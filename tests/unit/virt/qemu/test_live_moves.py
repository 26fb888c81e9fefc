"""The QEMU driver's live migration ends over fake qemu, qemu-img and QMP: what the
destination prepares and answers, what it does once the guest arrived, and how
destroy rolls it back."""

from __future__ import annotations

from typing import Any

import pytest

from novalet.compute.states import PowerState
from novalet.virt.driver import GuestSpec, ImageMeta, VirtDriverError
from novalet.virt.qemu import migration_ports
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.layout import InstancePaths
from novalet.virt.qemu.live_moves import SharedStorageRequired
from tests.unit.virt.qemu.conftest import make_spec
from tests.unit.virt.qemu.fakes import FakeProcesses, FakeVm, read_stub


@pytest.fixture(autouse=True)
def _migration_setup(conf: Any, monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """Inbound on 127.0.0.1, ports 49152:49155; no real bind (busy: taken ones)."""
    conf.set("qemu", "live_migration_inbound_addr", "127.0.0.1")
    conf.set("qemu", "live_migration_port_range", "49152:49155")
    busy: set[int] = set()
    monkeypatch.setattr(migration_ports, "can_bind", lambda host, port: port not in busy)
    return busy


def vm_of(processes: FakeProcesses, driver: QemuDriver, uuid: str) -> FakeVm:
    vm = processes.vm_for(InstancePaths(driver.instances_path, uuid).qmp)
    assert vm is not None
    return vm


async def test_the_destination_makes_disks_and_waits_with_an_nbd_server(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses,
        _migration_setup: set[int]) -> None:
    _migration_setup.add(49152)  # another program listens there
    spec = make_spec(image, ephemeral_gb=2, swap_mb=256)
    target = await driver.pre_live_migration(spec, True, False)
    assert target.address == "127.0.0.1" and (target.nbd_port, target.memory_port) == (
        49153, 49154)
    assert target.disks == ["root", "eph0", "swap"] and target.overlays == ["root"]
    paths = InstancePaths(driver.instances_path, spec.uuid)
    root, eph = read_stub(paths.disk("disk")), read_stub(paths.disk("disk.eph0"))
    assert root is not None and root["backing"] == str(driver.cache.path / "img-1")
    assert eph is not None and eph["backing"] is None and eph["size"] == 2 << 30
    assert paths.disk("disk.config").exists() and paths.config.exists()
    vm = vm_of(processes, driver, spec.uuid)
    assert "-incoming" in vm.argv and "-S" not in vm.argv  # runs as soon as it lands
    assert vm.incoming == "tcp:127.0.0.1:49154"
    exports = [a for c, a in vm.arguments if c == "block-export-add"]
    assert [(e["name"], e["node-name"], e["writable"]) for e in exports] == [
        ("root", "node-root", True), ("eph0", "node-eph0", True), ("swap", "node-swap", True)]
    names = [c for c, _ in vm.arguments]
    assert names.index("nbd-server-start") < names.index("migrate-incoming")
    assert await driver.list_instances() == []  # not this host's guest yet


async def test_arrived_guests_run_unless_paused_at_their_source(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses) -> None:
    specs = [make_spec(image) for _ in range(2)]
    for spec, paused in zip(specs, (False, True), strict=True):
        await driver.pre_live_migration(spec, True, paused)
        vm_of(processes, driver, spec.uuid).status = "paused"  # landed, paused
        await driver.post_live_migration_at_destination(spec, paused)
        assert "nbd-server-stop" in vm_of(processes, driver, spec.uuid).commands
        paths = InstancePaths(driver.instances_path, spec.uuid)
        assert not paths.spawning.exists() and paths.console_record.exists()
    assert (await driver.get_info(specs[0].uuid)).power_state == PowerState.RUNNING
    assert (await driver.get_info(specs[1].uuid)).power_state == PowerState.PAUSED
    assert sorted(await driver.list_instances()) == sorted(s.uuid for s in specs)
    assert driver.live.ports.held == {}


async def test_destroy_rolls_the_destination_back_and_frees_its_ports(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses) -> None:
    spec = make_spec(image)
    first = await driver.pre_live_migration(spec, True, False)
    await driver.destroy(spec.uuid)
    assert not processes.running and not (driver.instances_path / spec.uuid).exists()
    again = await driver.pre_live_migration(spec, True, False)
    assert again.memory_port == first.memory_port  # released, claimed again


async def test_a_failed_prepare_leaves_nothing(driver: QemuDriver, image: ImageMeta,
                                               processes: FakeProcesses) -> None:
    processes.launch_error = "qemu: could not load kernel"
    spec = make_spec(image)
    with pytest.raises(VirtDriverError, match="could not load kernel"):
        await driver.pre_live_migration(spec, True, False)
    assert not (driver.instances_path / spec.uuid).exists() and driver.live.ports.held == {}


async def test_without_block_migration_the_hosts_would_need_shared_storage(
        driver: QemuDriver, image: ImageMeta) -> None:
    spec: GuestSpec = make_spec(image)
    with pytest.raises(SharedStorageRequired) as refused:
        await driver.pre_live_migration(spec, False, False)
    assert refused.value.code == 400 and not (driver.instances_path / spec.uuid).exists()
