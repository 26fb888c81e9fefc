"""Cold moves between two QemuDrivers over fake qemu-img, qemu-storage-daemon and QEMU."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.compute.move_payloads import MoveTarget
from novalet.compute.states import PowerState
from novalet.virt.driver import GuestSpec, ImageMeta, InstanceNotFoundOnHost, VirtDriverError
from novalet.virt.qemu import cold_migration
from novalet.virt.qemu.cold_migration import (DiskCopyFailed, copy_argv, incoming_sizes,
                                              kept_dir, nbd_uri)
from novalet.virt.qemu.commands import CommandFailed, CommandResult
from novalet.virt.qemu.disk_exports import export_argv
from novalet.virt.qemu.disks import GiB
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.layout import InstancePaths
from tests.unit.virt.qemu.conftest import make_spec
from tests.unit.virt.qemu.fakes import (DirFetcher, FakeProcesses, FakeQmp, FakeRunner,
                                        FakeVm, read_stub)

# --- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "uri"), [
    ("192.0.2.7", "nbd://192.0.2.7:49152/root"),
    ("2001:db8::7", "nbd://[2001:db8::7]:49152/root"),
    ("compute-2.example", "nbd://compute-2.example:49152/root")])
def test_the_source_builds_nbd_uris_from_the_checked_parts(address: str, uri: str) -> None:
    target = MoveTarget(address=address, nbd_port=49152, disks=["root"]).check()
    assert nbd_uri(target, "root") == uri


def test_the_copy_flattens_into_a_zeroed_export() -> None:
    assert copy_argv(Path("/i/disk"), "qcow2", "nbd://h:1/root") == [
        "qemu-img", "convert", "-q", "-n", "--target-is-zero", "-W", "-f", "qcow2",
        "-O", "raw", "/i/disk", "nbd://h:1/root"]


def test_one_daemon_exports_every_disk_by_drive_id_and_paths_keep_their_commas() -> None:
    argv = export_argv([("root", Path("/a,b/root")), ("eph0", Path("/a,b/eph0"))],
                       "10.0.0.2", 49152, Path("/a,b/nbd.pid"))
    assert argv[0] == "qemu-storage-daemon"
    assert "driver=file,filename=/a,,b/root,node-name=file-root" in argv
    assert "driver=qcow2,file=file-eph0,node-name=eph0" in argv
    assert "addr.type=inet,addr.host=10.0.0.2,addr.port=49152" in argv
    assert "type=nbd,id=export-root,node-name=root,name=root,writable=on" in argv
    assert argv[-3:] == ["--daemonize", "--pidfile", "/a,b/nbd.pid"]


def test_incoming_disks_are_as_big_as_the_source_can_have_and_the_new_flavor_wants(
        ) -> None:
    spec = make_spec(None, root_gb=0, ephemeral_gb=2)
    assert incoming_sizes(spec, 3 * GiB + 5) == [("root", 3 * GiB + 5), ("eph0", 2 * GiB)]
    assert incoming_sizes(make_spec(None, root_gb=4), 3 * GiB) == [("root", 4 * GiB)]


# --- two hosts over fakes -----------------------------------------------------------------


class NbdRunner(FakeRunner):
    """FakeRunner with qemu-storage-daemon (its exports in `served`) and qemu-img on nbd://."""

    def __init__(self, processes: FakeProcesses) -> None:
        super().__init__()
        self.processes = processes
        self.served: dict[str, tuple[int, Path]] = {}  # "host:port/name" -> (pid, file)
        self.busy: set[int] = set()  # ports another program took after they were claimed

    async def run(self, argv: Sequence[str], *, timeout: float = 300.0,
                  check: bool = True, cwd: str | None = None) -> CommandResult:
        argv = list(argv)
        if argv[0] == "qemu-storage-daemon":
            self.calls.append(argv)
            return self._serve(argv)
        uri = next((a for a in argv if a.startswith("nbd://")), None)
        if argv[0] == "qemu-img" and (uri or argv[1] == "map"):
            self.calls.append(argv)
            if argv[1] in self.fail:
                raise CommandFailed(program="qemu-img", returncode=1, stderr=self.fail[argv[1]])
            return CommandResult(tuple(argv), 0, self._nbd(argv, uri), "", 0.0)
        return await super().run(argv, timeout=timeout, check=check, cwd=cwd)

    def _serve(self, argv: list[str]) -> CommandResult:
        pidfile = argv[-1]
        if any(f"addr.port={port}" in a for a in argv for port in self.busy):
            raise CommandFailed(program="qemu-storage-daemon", returncode=1,
                                stderr="Failed to find an available port: Address already in use")
        self.processes.next_pid += 1
        pid = self.processes.next_pid
        self.processes.vms[pid] = FakeVm(pid, argv, "", pidfile)
        Path(pidfile).write_text(f"{pid}\n")
        files = {o.split("node-name=")[1]: o.split("filename=")[1].split(",node-name")[0]
                 for o in argv if o.startswith("driver=file,")}
        server = next(o for o in argv if o.startswith("addr.type=inet"))
        where = dict(p.split("=") for p in server.split(","))
        for export in (o for o in argv if o.startswith("type=nbd,")):
            name = export.split("name=")[-1].split(",")[0]
            self.served[f"{where['addr.host']}:{where['addr.port']}/{name}"] = (
                pid, Path(files[f"file-{name}"]))
        return CommandResult(tuple(argv), 0, "", "", 0.0)

    def _nbd(self, argv: list[str], uri: str | None) -> str:
        if argv[1] == "map":
            stub = read_stub(Path(argv[-1]))
            return json.dumps([{"data": bool(stub and stub.get("copied_from"))}])
        assert uri is not None
        pid, path = self.served.get(uri.removeprefix("nbd://"), (0, Path()))
        if not self.processes.vms.get(pid, FakeVm(0, [], "", "", alive=False)).alive:
            raise CommandFailed(program="qemu-img", returncode=1,
                                stderr=f"Failed to connect to '{uri}': Connection refused")
        stub = read_stub(path)
        assert stub is not None
        if argv[1] == "info":
            return json.dumps({"format": "raw", "virtual-size": stub["size"]})
        assert argv[1] == "convert" and "--target-is-zero" in argv
        path.write_bytes(path.read_bytes()[:-1] + b', "copied_from": '
                         + json.dumps(argv[-2]).encode() + b"}")
        return ""


@dataclasses.dataclass
class TwoHosts:
    a: QemuDriver
    b: QemuDriver
    runner: NbdRunner
    processes: FakeProcesses


@pytest.fixture
async def two(tmp_path: Path, fetcher: DirFetcher, processes: FakeProcesses, qmp: FakeQmp,
              monkeypatch: pytest.MonkeyPatch) -> TwoHosts:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr("novalet.virt.qemu.migration_ports.can_bind", lambda host, port: True)
    runner = NbdRunner(processes)
    drivers = []
    for host in ("host-a", "host-b"):
        conf = config.Config()
        conf.set("DEFAULT", "state_path", str(tmp_path / host))
        conf.set("DEFAULT", "host", host)
        conf.set("qemu", "virt_type", "qemu")
        conf.set("DEFAULT", "shutdown_timeout", "0.05")
        conf.set("qemu", "live_migration_inbound_addr", "10.0.0.2" if host == "host-b"
                 else "10.0.0.1")
        driver = QemuDriver(conf, fetcher, runner=runner, processes=processes, connect=qmp)
        await driver.init_host(host)
        drivers.append(driver)
    return TwoHosts(drivers[0], drivers[1], runner, processes)


def paths(driver: QemuDriver, uuid: str) -> InstancePaths:
    return InstancePaths(driver.instances_path, uuid)


def qemu_of(two: TwoHosts, driver: QemuDriver, uuid: str) -> FakeVm | None:
    return two.processes.vm_for(paths(driver, uuid).qmp)


async def relayed(driver: QemuDriver, spec: GuestSpec) -> MoveTarget:
    return MoveTarget.from_dict(json.loads(json.dumps(
        (await driver.prepare_move_in(spec)).to_dict()))).check()


@pytest.fixture
async def guest(two: TwoHosts, image: ImageMeta) -> GuestSpec:
    spec = make_spec(image, ephemeral_gb=1, swap_mb=128)
    await two.a.spawn(spec)
    return spec


async def test_a_resize_to_another_host_moves_the_disks_and_confirm_drops_the_source(
        two: TwoHosts, guest: GuestSpec) -> None:
    bigger = dataclasses.replace(guest, memory_mb=256, root_gb=3, ephemeral_gb=2, swap_mb=256)
    target = await relayed(two.b, bigger)
    assert (target.address, target.disks) == ("10.0.0.2", ["root", "eph0"])
    assert guest.uuid not in await two.b.list_instances()  # not a guest before finish
    source = paths(two.a, guest.uuid)

    await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", target)
    assert qemu_of(two, two.a, guest.uuid) is None
    assert await two.a.list_instances() == [] and kept_dir(two.a.instances_path,
                                                           guest.uuid).is_dir()
    copies = two.runner.commands("qemu-img", "convert")
    assert [c[-2:] for c in copies] == [
        [str(source.disk("disk")), f"nbd://10.0.0.2:{target.nbd_port}/root"],
        [str(source.disk("disk.eph0")), f"nbd://10.0.0.2:{target.nbd_port}/eph0"]]

    await two.b.finish_migration(bigger, power_on=True)
    dest = paths(two.b, guest.uuid)
    vm = qemu_of(two, two.b, guest.uuid)
    assert vm is not None and vm.option("-m") == ["256"]
    root, eph = read_stub(dest.disk("disk")), read_stub(dest.disk("disk.eph0"))
    assert root is not None and root["size"] == 3 * GiB and root["backing"] is None
    assert root["copied_from"] == str(source.disk("disk"))
    assert eph is not None and eph["size"] == 2 * GiB and eph["copied_from"]
    swap = read_stub(dest.disk("disk.swap"))
    assert swap is not None and swap["backing"].endswith("swap_256M")  # made anew
    assert dest.disk("disk.config").exists()
    assert await two.b.list_instances() == [guest.uuid]
    assert not (dest.dir / "incoming").exists() and not (dest.dir / "nbd.pid").exists()
    assert not two.b.cold_moves.ports.held

    await two.a.confirm_migration(guest.uuid)
    assert not kept_dir(two.a.instances_path, guest.uuid).exists()


async def test_revert_brings_the_kept_guest_back_as_it_was(two: TwoHosts,
                                                          guest: GuestSpec) -> None:
    before = paths(two.a, guest.uuid).config.read_text()
    target = await relayed(two.b, guest)
    await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", target)
    await two.b.finish_migration(guest, power_on=False)
    assert (await two.b.get_info(guest.uuid)).power_state == PowerState.SHUTDOWN
    with pytest.raises(InstanceNotFoundOnHost):  # kept, but no guest of this host's
        await two.a.get_info(guest.uuid)
    await two.b.destroy(guest.uuid)
    await two.a.finish_revert_migration(guest, power_on=True)
    assert paths(two.a, guest.uuid).config.read_text() == before
    assert (await two.a.get_info(guest.uuid)).power_state == PowerState.RUNNING
    assert not kept_dir(two.a.instances_path, guest.uuid).exists()
    assert not paths(two.b, guest.uuid).dir.exists()


async def test_a_port_taken_meanwhile_is_passed_over(two: TwoHosts, guest: GuestSpec) -> None:
    first = two.b.cold_moves.ports.first
    two.runner.busy = {first, first + 1}
    assert (await relayed(two.b, guest)).nbd_port == first + 2
    two.runner.busy = set(range(first, first + 10))
    with pytest.raises(CommandFailed, match="Address already in use"):
        await relayed(two.b, dataclasses.replace(guest, uuid="0e8d3a51-9b3f-4d8e-8a7e-"
                                                              "3c2f1a0b9d8c"))
    assert not two.b.cold_moves.ports.held.get("0e8d3a51-9b3f-4d8e-8a7e-3c2f1a0b9d8c")


async def test_destroy_of_a_prepared_guest_stops_its_nbd_server(two: TwoHosts,
                                                               guest: GuestSpec) -> None:
    await relayed(two.b, guest)
    server = two.b.cold_moves.exports.pid(paths(two.b, guest.uuid))
    assert server is not None and two.b.cold_moves.ports.held
    await two.b.destroy(guest.uuid)
    assert not two.processes.vms[server].alive and not two.b.cold_moves.ports.held
    assert not paths(two.b, guest.uuid).dir.exists()


async def test_a_restarted_destination_drops_a_half_received_guest(
        two: TwoHosts, guest: GuestSpec) -> None:
    await relayed(two.b, guest)
    server = two.b.cold_moves.exports.pid(paths(two.b, guest.uuid))
    await two.b.init_host("host-b")
    assert server is not None and not two.processes.vms[server].alive
    assert not paths(two.b, guest.uuid).dir.exists()


@pytest.mark.parametrize(("change", "error"), [
    ({"root_gb": 0}, "it would shrink from 1073741824 to 67108864 bytes"),
    ({"ephemeral_gb": 0}, "the destination takes no such disk")])
async def test_shrinking_is_refused_while_the_guest_still_runs(
        two: TwoHosts, guest: GuestSpec, change: dict[str, Any], error: str) -> None:
    pid = qemu_of(two, two.a, guest.uuid)
    target = await relayed(two.b, dataclasses.replace(guest, **change))
    with pytest.raises(DiskCopyFailed, match=error):
        await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", target)
    assert qemu_of(two, two.a, guest.uuid) is pid is not None
    assert not two.runner.commands("qemu-img", "convert")


async def test_an_unreachable_destination_is_found_before_the_guest_stops(
        two: TwoHosts, guest: GuestSpec) -> None:
    target = await relayed(two.b, guest)
    await two.b.cold_moves.exports.stop(paths(two.b, guest.uuid))
    with pytest.raises(DiskCopyFailed, match="NBD server does not answer.*Connection refused"):
        await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", target)
    assert qemu_of(two, two.a, guest.uuid) is not None


async def test_a_failed_copy_restarts_the_guest_at_the_source(two: TwoHosts,
                                                             guest: GuestSpec) -> None:
    first = qemu_of(two, two.a, guest.uuid)
    target = await relayed(two.b, guest)
    two.runner.fail["convert"] = "qemu-img: error while writing at byte 0: Broken pipe"
    with pytest.raises(DiskCopyFailed, match="Broken pipe"):
        await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", target)
    again = qemu_of(two, two.a, guest.uuid)
    assert again is not None and again is not first
    assert not kept_dir(two.a.instances_path, guest.uuid).exists()
    await two.b.destroy(guest.uuid)
    await two.a.finish_revert_migration(guest, power_on=True)  # the conductor's rollback
    assert qemu_of(two, two.a, guest.uuid) is again


async def test_a_move_without_an_nbd_target_is_refused(two: TwoHosts, guest: GuestSpec) -> None:
    with pytest.raises(DiskCopyFailed, match="the destination takes no such disk"):
        await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", MoveTarget())
    assert qemu_of(two, two.a, guest.uuid) is not None


async def test_finish_needs_the_disks(two: TwoHosts, guest: GuestSpec) -> None:
    other = dataclasses.replace(guest, uuid="5b0c1ae4-53c4-4a5b-a1a4-2f8e3a63a7d1")
    with pytest.raises(VirtDriverError, match="prepare step never ran on this host"):
        await two.b.finish_migration(other, power_on=True)
    await relayed(two.b, other)
    with pytest.raises(VirtDriverError, match="root disk of .* never arrived"):
        await two.b.finish_migration(other, power_on=True)


async def test_the_image_cache_keeps_the_bases_of_a_kept_guest(
        two: TwoHosts, guest: GuestSpec) -> None:
    two.a.conf.set("qemu", "remove_unused_original_minimum_age_seconds", "0")
    target = await relayed(two.b, guest)
    await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", target)
    assert await two.a.manage_image_cache() == []
    await two.a.confirm_migration(guest.uuid)
    assert "img-1" in await two.a.manage_image_cache()


def test_kept_guests_are_found_by_their_description(tmp_path: Path) -> None:
    (tmp_path / "a_resize").mkdir()
    (tmp_path / "a_resize" / "domain.json").write_text("{}")
    (tmp_path / "b_resize").mkdir()
    assert cold_migration.kept_configs(tmp_path) == [tmp_path / "a_resize" / "domain.json"]
    assert cold_migration.kept_configs(tmp_path / "none") == []


# --- stale kept copies (`<uuid>_resize` of an older move) ----------------------------------


async def back_with_a_stale_copy(two: TwoHosts, guest: GuestSpec) -> str:
    """A->B confirmed while A was down (A keeps its copy), then B->A confirmed: the
    guest runs on A beside a stale `<uuid>_resize`. The root disk the guest has now."""
    await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", await relayed(two.b, guest))
    await two.b.finish_migration(guest, power_on=True)
    await two.b.migrate_disk_and_power_off(guest.uuid, "host-a", await relayed(two.a, guest))
    await two.a.finish_migration(guest, power_on=True)
    await two.b.confirm_migration(guest.uuid)
    assert kept_dir(two.a.instances_path, guest.uuid).is_dir()
    return str(paths(two.b, guest.uuid).disk("disk"))  # where A's root disk came from


async def test_a_failed_move_out_never_reverts_to_a_stale_resize_copy(
        two: TwoHosts, guest: GuestSpec) -> None:
    """Reviewer's B3: the shrink refusal, then the conductor's rollback (revert_move_in
    at the destination, revert_move_out here), must leave the running guest alone."""
    came_from = await back_with_a_stale_copy(two, guest)
    running = qemu_of(two, two.a, guest.uuid)
    target = await relayed(two.b, dataclasses.replace(guest, root_gb=0))
    with pytest.raises(DiskCopyFailed, match="shrink"):
        await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", target)
    assert not kept_dir(two.a.instances_path, guest.uuid).exists()  # removed first
    await two.b.destroy(guest.uuid)
    await two.a.finish_revert_migration(guest, power_on=True)
    assert qemu_of(two, two.a, guest.uuid) is running is not None
    root = read_stub(paths(two.a, guest.uuid).disk("disk"))
    assert root is not None and root["copied_from"] == came_from


async def test_revert_never_replaces_the_guest_by_a_stale_resize_copy(
        two: TwoHosts, guest: GuestSpec) -> None:
    """A move that failed before the driver's move_out ran (e.g. a bad MoveTarget):
    the stale copy is still there at revert and the guest here wins."""
    came_from = await back_with_a_stale_copy(two, guest)
    running = qemu_of(two, two.a, guest.uuid)
    await two.a.finish_revert_migration(guest, power_on=True)
    assert qemu_of(two, two.a, guest.uuid) is running is not None
    root = read_stub(paths(two.a, guest.uuid).disk("disk"))
    assert root is not None and root["copied_from"] == came_from


async def test_destroy_removes_a_stale_resize_copy_with_the_guest(
        two: TwoHosts, guest: GuestSpec) -> None:
    """Reviewer's M4: a delete outside VERIFY_RESIZE leaves no `<uuid>_resize`."""
    await back_with_a_stale_copy(two, guest)
    await two.a.destroy(guest.uuid)
    assert not paths(two.a, guest.uuid).dir.exists()
    assert not kept_dir(two.a.instances_path, guest.uuid).exists()


async def test_destroy_of_a_guest_not_here_keeps_the_copy_a_revert_needs(
        two: TwoHosts, guest: GuestSpec) -> None:
    """VERIFY_RESIZE on B: a stray destroy at A (a restart's cleanup of unknown
    guests, a rollback) must not take the revert's copy; the revert still works."""
    await two.a.migrate_disk_and_power_off(guest.uuid, "host-b", await relayed(two.b, guest))
    await two.b.finish_migration(guest, power_on=True)
    await two.a.destroy(guest.uuid)
    assert kept_dir(two.a.instances_path, guest.uuid).is_dir()
    await two.b.destroy(guest.uuid)
    await two.a.finish_revert_migration(guest, power_on=True)
    assert (await two.a.get_info(guest.uuid)).power_state == PowerState.RUNNING
