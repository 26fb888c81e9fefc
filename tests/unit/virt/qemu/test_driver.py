"""QemuDriver's logic over fake qemu, qemu-img and QMP."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.compute.states import PowerState
from novalet.virt import loader
from novalet.virt.driver import GuestSpec, ImageMeta, InstanceNotFoundOnHost, VirtDriverError
from novalet.virt.qemu.disks import GiB
from novalet.virt.qemu.driver import CONSOLE_OUTPUT_MAX, QemuDriver
from novalet.virt.qemu.layout import GuestConfig, InstancePaths
from tests.unit.virt.qemu.conftest import make_spec
from tests.unit.virt.qemu.fakes import (DirFetcher, FakeProcesses, FakeQmp, FakeRunner,
                                        read_stub)


def paths_of(driver: QemuDriver, uuid: str) -> InstancePaths:
    return InstancePaths(driver.instances_path, uuid)


def config_of(driver: QemuDriver, uuid: str) -> GuestConfig:
    return paths_of(driver, uuid).load_active()


def vm_of(processes: FakeProcesses, driver: QemuDriver, uuid: str) -> Any:
    vm = processes.vm_for(paths_of(driver, uuid).qmp)
    assert vm is not None, f"no running QEMU for {uuid}"
    return vm


async def power(driver: QemuDriver, uuid: str) -> PowerState:
    return (await driver.get_info(uuid)).power_state


@pytest.fixture
async def running(driver: QemuDriver, image: ImageMeta) -> GuestSpec:
    spec = make_spec(image, ephemeral_gb=2, swap_mb=256)
    await driver.spawn(spec)
    return spec


# --- spawn -------------------------------------------------------------------------


async def test_spawn_makes_disks_and_starts_one_qemu(driver: QemuDriver, running: GuestSpec,
                                                     runner: FakeRunner,
                                                     processes: FakeProcesses) -> None:
    paths = paths_of(driver, running.uuid)
    assert await power(driver, running.uuid) == PowerState.RUNNING
    root = read_stub(paths.disk("disk"))
    assert root is not None
    assert root["format"] == "qcow2" and root["size"] == GiB
    assert root["backing"] == str(driver.cache.path / "img-1")
    assert root["backing_format"] == "qcow2"
    eph = read_stub(paths.disk("disk.eph0"))
    swap = read_stub(paths.disk("disk.swap"))
    assert eph is not None and eph["backing"].endswith("ephemeral_2048M_ext4")
    assert swap is not None and swap["backing"].endswith("swap_256M")
    assert paths.disk("disk.config").read_bytes()[0x8001:0x8006] == b"CD001"
    assert not paths.spawning.exists()
    assert paths.dir.stat().st_mode & 0o777 == 0o700
    [vm] = processes.running
    assert vm.option("-uuid") == [running.uuid]
    assert [d.id for d in config_of(driver, running.uuid).disks] == [
        "root", "eph0", "swap", "config"]
    assert await driver.list_instances() == [running.uuid]


async def test_root_disk_takes_the_image_size_when_the_flavor_has_none(
        driver: QemuDriver, image: ImageMeta) -> None:
    spec = make_spec(image, root_gb=0)
    await driver.spawn(spec)
    root = read_stub(paths_of(driver, spec.uuid).disk("disk"))
    assert root is not None and root["size"] == 64 * 1024 * 1024


async def test_no_config_drive_unless_asked_as_in_nova(
        driver: QemuDriver, conf: config.Config, image: ImageMeta) -> None:
    """force_config_drive is off by default, as Nova's: guests read the metadata
    service; a server gets a drive when its create asks (or the operator forces it)."""
    plain = make_spec(image, config_drive=False)
    await driver.spawn(plain)
    assert not paths_of(driver, plain.uuid).disk("disk.config").exists()
    asked = make_spec(image, config_drive=True)
    await driver.spawn(asked)
    assert config_of(driver, asked.uuid).disk("config") is not None
    conf.set("DEFAULT", "force_config_drive", "true")
    forced = make_spec(image, config_drive=False)
    await driver.spawn(forced)
    assert config_of(driver, forced.uuid).disk("config") is not None


async def test_image_properties_shape_the_guest(driver: QemuDriver, image: ImageMeta,
                                                processes: FakeProcesses,
                                                caplog: pytest.LogCaptureFixture) -> None:
    props = {"hw_disk_bus": "scsi", "hw_machine_type": "q35", "hw_vif_model": "e1000",
             "hw_rng_model": "virtio", "hw_video_model": "cirrus", "os_type": "linux",
             "hw_watchdog_action": "reset"}
    spec = make_spec(dataclasses.replace(image, properties=props))
    with caplog.at_level(logging.INFO):
        await driver.spawn(spec)
    vm = vm_of(processes, driver, spec.uuid)
    devices = vm.option("-device")
    assert any(d.startswith("scsi-hd,drive=root") for d in devices)
    assert any(d.startswith("ide-cd,drive=config") and "bus=ide.0" for d in devices)
    assert any(d.startswith("e1000,") for d in devices)
    assert "virtio-rng-pci,rng=rng0" in devices
    assert vm.option("-machine") == ["q35"] and vm.option("-vga") == ["cirrus"]
    assert "os_type=linux is ignored" in caplog.text
    assert "hw_watchdog_action=reset is not supported; ignored" in caplog.text


async def test_an_unsupported_bus_fails_the_spawn_cleanly(driver: QemuDriver,
                                                          image: ImageMeta) -> None:
    spec = make_spec(dataclasses.replace(image, properties={"hw_disk_bus": "usb"}))
    with pytest.raises(VirtDriverError, match="hw_disk_bus='usb' is not supported"):
        await driver.spawn(spec)
    assert not paths_of(driver, spec.uuid).dir.exists()


async def test_direct_kernel_boot(driver: QemuDriver, image: ImageMeta, fetcher: DirFetcher,
                                  tmp_path: Path, processes: FakeProcesses) -> None:
    for name in ("kern", "ram"):
        (tmp_path / name).write_bytes(name.encode())
        fetcher.files[name] = tmp_path / name
    spec = make_spec(dataclasses.replace(image, properties={
        "kernel_id": "kern", "ramdisk_id": "ram"}))
    await driver.spawn(spec)
    vm = vm_of(processes, driver, spec.uuid)
    assert vm.option("-kernel") == [str(driver.cache.path / "kern")]
    assert vm.option("-initrd") == [str(driver.cache.path / "ram")]
    assert vm.option("-append") == ["root=/dev/vda console=tty0 console=ttyS0"]
    guest = config_of(driver, spec.uuid)
    assert str(driver.cache.path / "kern") in guest.bases

    custom = make_spec(dataclasses.replace(image, properties={
        "kernel_id": "kern", "os_command_line": "root=/dev/vda2 quiet"}))
    await driver.spawn(custom)
    assert vm_of(processes, driver, custom.uuid).option("-append") == ["root=/dev/vda2 quiet"]


async def test_a_qemu_that_fails_to_start_leaves_nothing(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses) -> None:
    processes.launch_error = "qemu-system-x86_64: -m 999999: cannot set up guest memory"
    spec = make_spec(image)
    with pytest.raises(VirtDriverError, match="cannot set up guest memory"):
        await driver.spawn(spec)
    assert not paths_of(driver, spec.uuid).dir.exists()
    assert processes.running == []


async def test_a_guest_that_is_not_running_after_start_is_killed(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses, qmp: FakeQmp) -> None:
    qmp.refuse.add("query-vnc")
    spec = make_spec(image)
    with pytest.raises(VirtDriverError, match="refused query-vnc"):
        await driver.spawn(spec)
    assert processes.running == [] and not paths_of(driver, spec.uuid).dir.exists()


async def test_bad_image_data_fails_the_spawn_and_leaves_nothing(
        driver: QemuDriver, image: ImageMeta, tmp_path: Path, fetcher: DirFetcher,
        processes: FakeProcesses) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"<html>not an image</html>")
    fetcher.files["junk"] = junk
    spec = make_spec(ImageMeta(id="junk", disk_format="qcow2"))
    with pytest.raises(VirtDriverError, match="declared qcow2 but its data is raw"):
        await driver.spawn(spec)
    assert not paths_of(driver, spec.uuid).dir.exists()
    assert [p.name for p in driver.cache.path.iterdir()] == []
    bad_sum = make_spec(dataclasses.replace(image, os_hash_value="ab" * 64))
    with pytest.raises(VirtDriverError, match="does not match its sha512 checksum"):
        await driver.spawn(bad_sum)
    assert await driver.list_instances() == [] and processes.vms == {}


async def test_a_flavor_disk_smaller_than_the_image_is_refused(
        driver: QemuDriver, image: ImageMeta) -> None:
    big = dataclasses.replace(image, min_disk=5)
    with pytest.raises(VirtDriverError, match="smaller than image img-1's min_disk"):
        await driver.spawn(make_spec(big, root_gb=1))


async def test_spawning_twice_is_refused(driver: QemuDriver, running: GuestSpec) -> None:
    with pytest.raises(VirtDriverError, match="already exists on this host"):
        await driver.spawn(running)


async def test_a_cancelled_spawn_cleans_up(driver: QemuDriver, image: ImageMeta,
                                           fetcher: DirFetcher) -> None:
    import asyncio

    async def slow_fetch(image: ImageMeta, dest: str) -> None:
        await asyncio.sleep(10)
    fetcher.fetch = slow_fetch  # type: ignore[method-assign]
    spec = make_spec(image)
    task = asyncio.create_task(driver.spawn(spec))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not paths_of(driver, spec.uuid).dir.exists()


# --- destroy -----------------------------------------------------------------------


async def test_destroy_stops_qemu_and_removes_everything(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    vm = vm_of(processes, driver, running.uuid)
    await driver.destroy(running.uuid)
    assert not vm.alive and "quit" in vm.commands
    assert not paths_of(driver, running.uuid).dir.exists()
    await driver.destroy(running.uuid)  # gone already is fine
    with pytest.raises(InstanceNotFoundOnHost):
        await driver.get_info(running.uuid)


async def test_destroy_kills_a_qemu_that_will_not_quit(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses, qmp: FakeQmp) -> None:
    qmp.refuse.add("quit")
    vm = vm_of(processes, driver, running.uuid)
    await driver.destroy(running.uuid)
    assert not vm.alive


# --- power -------------------------------------------------------------------------


async def test_pause_and_unpause(driver: QemuDriver, running: GuestSpec) -> None:
    await driver.pause(running.uuid)
    assert await power(driver, running.uuid) == PowerState.PAUSED
    await driver.pause(running.uuid)
    await driver.unpause(running.uuid)
    assert await power(driver, running.uuid) == PowerState.RUNNING


async def test_trigger_crash_dump_injects_an_nmi(driver: QemuDriver, running: GuestSpec,
                                                  processes: FakeProcesses) -> None:
    vm = vm_of(processes, driver, running.uuid)
    await driver.trigger_crash_dump(running.uuid)
    assert vm.commands[-1] == "inject-nmi"
    await driver.power_off(running.uuid)
    with pytest.raises(VirtDriverError, match="is not running") as refused:
        await driver.trigger_crash_dump(running.uuid)
    assert refused.value.code == 409


async def test_setting_a_password_is_not_claimed(driver: QemuDriver,
                                                 running: GuestSpec) -> None:
    """No guest agent channel: the capability is off and the driver refuses."""
    assert not driver.capabilities.supports_set_admin_password
    with pytest.raises(VirtDriverError, match="does not support set_admin_password"):
        await driver.set_admin_password(running.uuid, "pw")


async def test_power_off_asks_by_acpi_first(driver: QemuDriver, running: GuestSpec,
                                            processes: FakeProcesses) -> None:
    vm = vm_of(processes, driver, running.uuid)
    await driver.power_off(running.uuid, timeout=5)
    assert vm.commands[-1] == "system_powerdown" and not vm.alive
    assert await power(driver, running.uuid) == PowerState.SHUTDOWN
    await driver.power_off(running.uuid, timeout=5)  # stopping a stopped guest is fine
    assert paths_of(driver, running.uuid).disk("disk").exists()


async def test_power_off_forces_a_guest_that_ignores_acpi(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    vm = vm_of(processes, driver, running.uuid)
    vm.acpi = False
    await driver.power_off(running.uuid, timeout=0.1)
    assert vm.commands.count("system_powerdown") >= 1 and vm.commands[-1] == "quit"
    assert not vm.alive


async def test_power_off_with_no_timeout_forces_at_once(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    vm = vm_of(processes, driver, running.uuid)
    await driver.power_off(running.uuid)
    assert "system_powerdown" not in vm.commands and vm.commands[-1] == "quit"


async def test_power_on_restarts_with_the_same_disks(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    first = vm_of(processes, driver, running.uuid)
    await driver.power_off(running.uuid)
    await driver.power_on(running.uuid)
    second = vm_of(processes, driver, running.uuid)
    assert second.pid != first.pid and second.argv == first.argv
    await driver.power_on(running.uuid)  # starting a running guest is fine
    assert vm_of(processes, driver, running.uuid).pid == second.pid


async def test_soft_reboot_shuts_down_then_starts(driver: QemuDriver, running: GuestSpec,
                                                  processes: FakeProcesses) -> None:
    first = vm_of(processes, driver, running.uuid)
    await driver.reboot(running.uuid, hard=False)
    assert first.commands[-1] == "system_powerdown"
    assert vm_of(processes, driver, running.uuid).pid != first.pid
    assert await power(driver, running.uuid) == PowerState.RUNNING


async def test_soft_reboot_of_a_deaf_guest_becomes_hard(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    first = vm_of(processes, driver, running.uuid)
    first.acpi = False
    await driver.reboot(running.uuid, hard=False)
    assert first.commands[-1] == "quit" and not first.alive
    assert await power(driver, running.uuid) == PowerState.RUNNING


async def test_hard_reboot_starts_a_stopped_or_suspended_guest(
        driver: QemuDriver, running: GuestSpec) -> None:
    await driver.power_off(running.uuid)
    await driver.reboot(running.uuid, hard=True)
    assert await power(driver, running.uuid) == PowerState.RUNNING
    await driver.suspend(running.uuid)
    await driver.reboot(running.uuid, hard=True)
    assert await power(driver, running.uuid) == PowerState.RUNNING
    assert not paths_of(driver, running.uuid).state.exists()


async def test_suspend_saves_state_and_resume_loads_it(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    first = vm_of(processes, driver, running.uuid)
    await driver.suspend(running.uuid)
    paths = paths_of(driver, running.uuid)
    assert not first.alive
    assert ["stop", "getfd", "migrate-set-parameters", "migrate"] == [
        c for c in first.commands if c in ("stop", "getfd", "migrate-set-parameters", "migrate")]
    assert paths.state.read_bytes() == f"STATE OF {first.pid}".encode()
    assert await power(driver, running.uuid) == PowerState.SUSPENDED
    await driver.suspend(running.uuid)  # already suspended
    await driver.resume(running.uuid)
    second = vm_of(processes, driver, running.uuid)
    assert "-incoming" in second.argv and second.loaded_state == f"STATE OF {first.pid}".encode()
    assert second.commands[-3:] == ["cont", "query-status", "query-vnc"]
    assert await power(driver, running.uuid) == PowerState.RUNNING
    assert not paths.state.exists() and not paths.state_meta.exists()


async def test_a_paused_guest_resumes_paused(driver: QemuDriver, running: GuestSpec) -> None:
    await driver.pause(running.uuid)
    await driver.suspend(running.uuid)
    await driver.resume(running.uuid)
    assert await power(driver, running.uuid) == PowerState.PAUSED


async def test_resume_without_state_is_an_error(driver: QemuDriver,
                                                running: GuestSpec) -> None:
    await driver.power_off(running.uuid)
    with pytest.raises(VirtDriverError, match="no saved state to resume"):
        await driver.resume(running.uuid)


async def test_pause_of_a_stopped_guest_is_an_error(driver: QemuDriver,
                                                    running: GuestSpec) -> None:
    await driver.power_off(running.uuid)
    with pytest.raises(VirtDriverError, match="is not running"):
        await driver.pause(running.uuid)


@pytest.mark.parametrize("operation", [
    "reboot", "power_off", "power_on", "pause", "unpause", "suspend", "resume", "get_info",
    "get_console_output", "snapshot", "unrescue", "confirm_resize", "revert_resize"])
async def test_unknown_guests_are_not_found(driver: QemuDriver, operation: str) -> None:
    uuid = "00000000-0000-4000-8000-000000000000"
    args: dict[str, tuple[Any, ...]] = {"reboot": (True,), "snapshot": ("/tmp/x",)}
    with pytest.raises(InstanceNotFoundOnHost):
        await getattr(driver, operation)(uuid, *args.get(operation, ()))


async def test_a_uuid_must_look_like_one(driver: QemuDriver) -> None:
    with pytest.raises(VirtDriverError, match="not an instance uuid"):
        await driver.destroy("../../etc")


# --- queries and re-attaching ------------------------------------------------------------


async def test_a_new_driver_finds_running_guests_without_restarting_them(
        driver: QemuDriver, running: GuestSpec, make_driver: Any,
        processes: FakeProcesses) -> None:
    pid = vm_of(processes, driver, running.uuid).pid
    again: QemuDriver = make_driver()
    await again.init_host("host-1")
    assert await again.list_instances() == [running.uuid]
    assert await power(again, running.uuid) == PowerState.RUNNING
    await again.pause(running.uuid)
    assert vm_of(processes, again, running.uuid).pid == pid
    assert len(processes.vms) == 1


async def test_init_host_removes_what_a_crashed_spawn_left(
        driver: QemuDriver, running: GuestSpec, make_driver: Any,
        processes: FakeProcesses) -> None:
    paths = paths_of(driver, running.uuid)
    paths.spawning.touch()
    assert await driver.list_instances() == []
    again: QemuDriver = make_driver()
    await again.init_host("host-1")
    assert not paths.dir.exists() and processes.running == []


async def test_a_qemu_that_does_not_answer_is_unknown_not_off(
        driver: QemuDriver, running: GuestSpec, qmp: FakeQmp) -> None:
    qmp.refuse.add("query-status")
    with pytest.raises(VirtDriverError, match="refused query-status"):
        await driver.get_info(running.uuid)


async def test_console_output_is_the_newest_mebibyte(driver: QemuDriver,
                                                     running: GuestSpec) -> None:
    log = paths_of(driver, running.uuid).console_log
    log.write_bytes(b"old\n" + b"x" * CONSOLE_OUTPUT_MAX + b"\nNOVALET-GUEST-READY\xff\n")
    out = await driver.get_console_output(running.uuid)
    assert len(out.encode()) <= CONSOLE_OUTPUT_MAX + 2
    assert not out.startswith("old") and "NOVALET-GUEST-READY\ufffd" in out


async def test_the_console_log_is_trimmed_when_qemu_starts(
        driver: QemuDriver, conf: config.Config, running: GuestSpec) -> None:
    conf.set("qemu", "console_log_max_bytes", "100")
    driver.guests.console_log_max = 100
    log = paths_of(driver, running.uuid).console_log
    log.write_bytes(b"a" * 500 + b"b" * 100)
    await driver.power_off(running.uuid)
    await driver.power_on(running.uuid)
    assert log.read_bytes() == b"b" * 100


async def test_host_resources(driver: QemuDriver) -> None:
    res = await driver.get_available_resource()
    assert res.hypervisor_type == "QEMU" and res.hypervisor_hostname == "host-1"
    assert res.vcpus >= 1 and res.memory_mb > 0 and res.local_gb >= 0
    assert res.cpu_info["arch"]


async def test_deep_instance_directories_are_fine(
        conf: config.Config, make_driver: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, image: ImageMeta, processes: FakeProcesses) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    conf.set("qemu", "instances_path", str(tmp_path / ("x" * 100)))
    driver: QemuDriver = make_driver()
    await driver.init_host("host-1")
    spec = make_spec(image)
    await driver.spawn(spec)
    assert len(str(paths_of(driver, spec.uuid).qmp)) > 107
    assert await power(driver, spec.uuid) == PowerState.RUNNING


async def test_init_host_needs_qemu(make_driver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(VirtDriverError, match="apt-get install qemu-system-x86"):
        await make_driver().init_host("host-1")


# --- snapshot ------------------------------------------------------------------------


async def test_snapshot_of_a_running_guest_is_a_live_backup(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses,
        tmp_path: Path) -> None:
    dest = tmp_path / "snap"
    assert await driver.snapshot(running.uuid, str(dest)) == "qcow2"
    vm = vm_of(processes, driver, running.uuid)
    assert "drive-backup" in vm.commands and vm.commands[-1] == "job-dismiss"
    assert vm.status == "running"
    stub = read_stub(dest)
    assert stub is not None and stub["backing"] is None and stub["size"] == GiB


async def test_a_failed_live_backup_is_an_error(driver: QemuDriver, running: GuestSpec,
                                                qmp: FakeQmp, tmp_path: Path) -> None:
    qmp.backup_error = "No space left on device"
    with pytest.raises(VirtDriverError, match="No space left on device"):
        await driver.snapshot(running.uuid, str(tmp_path / "snap"))


async def test_snapshot_of_a_stopped_guest_flattens_with_qemu_img(
        driver: QemuDriver, running: GuestSpec, runner: FakeRunner, tmp_path: Path) -> None:
    await driver.power_off(running.uuid)
    dest = tmp_path / "snap"
    await driver.snapshot(running.uuid, str(dest))
    convert = runner.commands("qemu-img", "convert")[-1]
    assert convert[3:7] == ["-f", "qcow2", "-O", "qcow2"]
    assert convert[-1] == str(dest)


# --- rescue ------------------------------------------------------------------------------


async def test_rescue_boots_the_rescue_image_with_the_root_disk_second(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses,
        image: ImageMeta) -> None:
    rescue_spec = dataclasses.replace(running, image_ref=image.id)
    await driver.rescue(running.uuid, rescue_spec)
    vm = vm_of(processes, driver, running.uuid)
    devices = vm.option("-device")
    assert devices.index("virtio-blk-pci,drive=rescue,id=dev-rescue,bootindex=0") < \
        devices.index("virtio-blk-pci,drive=root,id=dev-root")
    paths = paths_of(driver, running.uuid)
    assert paths.disk("disk.rescue").exists() and paths.disk("disk.config.rescue").exists()
    assert await power(driver, running.uuid) == PowerState.RUNNING
    with pytest.raises(VirtDriverError, match="already rescued"):
        await driver.rescue(running.uuid, rescue_spec)
    await driver.unrescue(running.uuid)
    vm = vm_of(processes, driver, running.uuid)
    assert not any("id=rescue" in d for d in vm.option("-drive"))
    assert not paths.disk("disk.rescue").exists() and not paths.rescue_config.exists()
    await driver.unrescue(running.uuid)  # not rescued: nothing to do


async def test_a_failed_rescue_leaves_no_rescue_files(driver: QemuDriver, running: GuestSpec,
                                                      image: ImageMeta) -> None:
    bad = dataclasses.replace(running, image=ImageMeta(id="missing"), image_ref="missing")
    with pytest.raises(VirtDriverError, match="downloading it failed"):
        await driver.rescue(running.uuid, bad)
    paths = paths_of(driver, running.uuid)
    assert not paths.rescue_config.exists() and not paths.disk("disk.rescue").exists()


# --- rebuild -------------------------------------------------------------------------------


async def test_rebuild_makes_a_new_root_disk_from_the_new_image(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses,
        fetcher: DirFetcher, image_file: Path) -> None:
    fetcher.files["img-2"] = image_file
    paths = paths_of(driver, running.uuid)
    paths.disk("disk").write_bytes(b"changed by the guest")
    old_pid = vm_of(processes, driver, running.uuid).pid
    new_image = ImageMeta(id="img-2", disk_format="qcow2")
    await driver.rebuild(dataclasses.replace(running, image=new_image, image_ref="img-2"))
    root = read_stub(paths.disk("disk"))
    assert root is not None and root["backing"] == str(driver.cache.path / "img-2")
    assert config_of(driver, running.uuid).image_id == "img-2"
    assert vm_of(processes, driver, running.uuid).pid != old_pid


async def test_rebuild_can_keep_the_ephemeral_disk(driver: QemuDriver,
                                                   running: GuestSpec) -> None:
    eph = paths_of(driver, running.uuid).disk("disk.eph0")
    eph.write_bytes(b"data the guest wrote")
    await driver.rebuild(running, preserve_ephemeral=True)
    assert eph.read_bytes() == b"data the guest wrote"
    await driver.rebuild(running)
    assert read_stub(eph) is not None


async def test_rebuild_of_a_stopped_guest_leaves_it_off(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    await driver.power_off(running.uuid)
    await driver.rebuild(running, power_on=False)
    assert processes.vm_for(paths_of(driver, running.uuid).qmp) is None
    assert await power(driver, running.uuid) == PowerState.SHUTDOWN
    await driver.power_on(running.uuid)  # boots the rebuilt disks
    assert await power(driver, running.uuid) == PowerState.RUNNING


# --- resize --------------------------------------------------------------------------------


async def test_resize_grows_disks_and_restarts_with_the_new_size(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    bigger = dataclasses.replace(running, memory_mb=256, vcpus=2, root_gb=3, ephemeral_gb=4,
                                 swap_mb=512)
    await driver.resize(running.uuid, bigger)
    paths = paths_of(driver, running.uuid)
    vm = vm_of(processes, driver, running.uuid)
    assert vm.option("-m") == ["256"] and vm.option("-smp")[0].startswith("2,")
    root = read_stub(paths.disk("disk"))
    eph = read_stub(paths.disk("disk.eph0"))
    swap = read_stub(paths.disk("disk.swap"))
    assert root is not None and root["size"] == 3 * GiB
    assert eph is not None and eph["size"] == 4 * GiB
    assert swap is not None and swap["backing"].endswith("swap_512M")
    assert (paths.resize / "disk").exists() and (paths.resize / "domain.json").exists()
    with pytest.raises(VirtDriverError, match="awaits confirm or revert"):
        await driver.resize(running.uuid, bigger)
    await driver.confirm_resize(running.uuid)
    assert not paths.resize.exists()
    assert config_of(driver, running.uuid).memory_mb == 256


async def test_revert_resize_restores_the_old_size_and_disks(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    paths = paths_of(driver, running.uuid)
    before = {name: paths.disk(name).read_bytes() for name in ("disk", "disk.eph0", "disk.swap")}
    await driver.resize(running.uuid, dataclasses.replace(
        running, memory_mb=256, root_gb=2, ephemeral_gb=3, swap_mb=0))
    assert not paths.disk("disk.swap").exists()
    await driver.revert_resize(running.uuid)
    after = {name: paths.disk(name).read_bytes() for name in ("disk", "disk.eph0", "disk.swap")}
    assert after == before
    assert vm_of(processes, driver, running.uuid).option("-m") == ["128"]
    assert not paths.resize.exists()
    with pytest.raises(VirtDriverError, match="no resize to revert"):
        await driver.revert_resize(running.uuid)


async def test_a_stopped_guest_stays_stopped_through_resize_and_revert(
        driver: QemuDriver, running: GuestSpec) -> None:
    await driver.power_off(running.uuid)
    await driver.resize(running.uuid, dataclasses.replace(running, memory_mb=256))
    assert await power(driver, running.uuid) == PowerState.SHUTDOWN
    await driver.revert_resize(running.uuid)
    assert await power(driver, running.uuid) == PowerState.SHUTDOWN


async def test_resize_never_shrinks(driver: QemuDriver, running: GuestSpec) -> None:
    with pytest.raises(VirtDriverError, match="can't shrink the ephemeral disk"):
        await driver.resize(running.uuid, dataclasses.replace(running, ephemeral_gb=1))
    await driver.resize(running.uuid, dataclasses.replace(running, root_gb=5))
    await driver.confirm_resize(running.uuid)
    with pytest.raises(VirtDriverError, match="can't shrink the root disk"):
        await driver.resize(running.uuid, dataclasses.replace(running, root_gb=2))
    assert not paths_of(driver, running.uuid).resize.exists()


async def test_a_failed_resize_puts_everything_back(
        driver: QemuDriver, running: GuestSpec, runner: FakeRunner,
        processes: FakeProcesses) -> None:
    paths = paths_of(driver, running.uuid)
    before = paths.config.read_text()
    runner.fail["resize"] = "qemu-img: Could not resize: disk full"
    with pytest.raises(VirtDriverError, match="disk full"):
        await driver.resize(running.uuid, dataclasses.replace(running, root_gb=4))
    assert paths.config.read_text() == before and not paths.resize.exists()
    assert vm_of(processes, driver, running.uuid).option("-m") == ["128"]


# --- image cache ----------------------------------------------------------------------------


async def test_the_image_cache_keeps_bases_guests_use(
        driver: QemuDriver, running: GuestSpec, conf: config.Config, fetcher: DirFetcher,
        image_file: Path) -> None:
    conf.set("qemu", "remove_unused_original_minimum_age_seconds", "0")
    fetcher.files["img-2"] = image_file
    spare = make_spec(ImageMeta(id="img-2", disk_format="qcow2"))
    await driver.spawn(spare)
    await driver.destroy(spare.uuid)
    assert await driver.manage_image_cache() == ["img-2"]
    assert (driver.cache.path / "img-1").exists()
    conf.set("qemu", "remove_unused_base_images", "false")
    await driver.destroy(running.uuid)
    assert await driver.manage_image_cache() == []


# --- loader ----------------------------------------------------------------------------------


def test_the_loader_makes_a_qemu_driver(conf: config.Config) -> None:
    conf.set("DEFAULT", "compute_driver", "qemu")
    fetcher = DirFetcher()
    driver = loader.load(conf, fetcher)
    assert isinstance(driver, QemuDriver) and driver.cache.fetcher is fetcher
    assert driver.instances_path == (conf.state_path / "instances").resolve()
    assert driver.cache.path == driver.instances_path / "_base"
