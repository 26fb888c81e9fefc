"""The QEMU command line built from a GuestConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu import cmdline
from novalet.virt.qemu.layout import Disk, GuestConfig, InstancePaths

UUID = "0b9c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b"
TCG = cmdline.HostSettings(accel="tcg", tcg_tb_size=32, vnc_listen="127.0.0.1")


def guest(**overrides: object) -> GuestConfig:
    values: dict[str, object] = dict(
        uuid=UUID, name="vm-1", memory_mb=128, vcpus=2, machine_type="pc",
        disks=(Disk("root", "/i/disk", "qcow2", "virtio", boot_index=0),
               Disk("config", "/i/disk.config", "raw", "ide", "cdrom", readonly=True)),
        mac="fa:16:3e:3f:4a:5b")
    values.update(overrides)
    return GuestConfig(**values)  # type: ignore[arg-type]


def paths() -> InstancePaths:
    return InstancePaths(Path("/i"), UUID)


def option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_identity_smbios_and_sizes() -> None:
    argv = cmdline.build(guest(), paths(), TCG)
    assert argv[0] == "qemu-system-x86_64"
    assert option(argv, "-uuid") == [UUID]
    assert option(argv, "-name") == ["guest=vm-1"]
    assert option(argv, "-m") == ["128"]
    assert option(argv, "-smp") == ["2,sockets=2,cores=1,threads=1"]
    smbios = option(argv, "-smbios")[0]
    assert smbios.startswith("type=1,")
    fields = dict(part.split("=", 1) for part in smbios.split(",")[1:])
    assert fields == {"manufacturer": "OpenStack Foundation", "product": "OpenStack Nova",
                      "version": fields["version"], "serial": UUID, "uuid": UUID,
                      "family": "Virtual Machine"}


def test_tcg_has_a_small_translation_cache_and_kvm_uses_the_host_cpu() -> None:
    argv = cmdline.build(guest(), paths(), TCG)
    assert option(argv, "-accel") == ["tcg,tb-size=32"]
    assert "-cpu" not in argv
    argv = cmdline.build(guest(), paths(), cmdline.HostSettings(accel="kvm"))
    assert option(argv, "-accel") == ["kvm"] and option(argv, "-cpu") == ["host"]


def test_monitor_serial_log_and_vnc() -> None:
    argv = cmdline.build(guest(), paths(), TCG)
    assert "socket,id=qmp,path=qmp.sock,server=on,wait=off" in argv
    assert option(argv, "-mon") == ["chardev=qmp,mode=control"]
    assert f"file,id=serial0,path=/i/{UUID}/console.log,append=on" in argv
    assert option(argv, "-serial") == ["chardev:serial0"]
    assert option(argv, "-vnc") == [f"127.0.0.1:0,to={cmdline.VNC_DISPLAYS - 1}"]
    assert option(argv, "-display") == ["none"]
    assert "-nodefaults" in argv and "-no-user-config" in argv


def test_vnc_off_and_ipv6() -> None:
    assert "-vnc" not in cmdline.build(guest(), paths(),
                                       cmdline.HostSettings(accel="tcg", vnc_listen=None))
    argv = cmdline.build(guest(), paths(), cmdline.HostSettings(accel="tcg", vnc_listen="::1"))
    assert option(argv, "-vnc")[0].startswith("[::1]:0,")


def test_commas_are_escaped_in_option_values() -> None:
    argv = cmdline.build(guest(name="a,b", disks=(
        Disk("root", "/x,y/disk", "qcow2", "virtio"),)), paths(), TCG)
    assert option(argv, "-name") == ["guest=a,,b"]
    assert "if=none,id=root,file=/x,,y/disk,format=qcow2,discard=unmap" in argv


def test_every_drive_names_its_format() -> None:
    argv = cmdline.build(guest(), paths(), TCG)
    drives = option(argv, "-drive")
    assert drives == ["if=none,id=root,file=/i/disk,format=qcow2,discard=unmap",
                      "if=none,id=config,file=/i/disk.config,format=raw,media=cdrom,readonly=on"]


def test_virtio_disk_and_ide_cdrom_on_pc() -> None:
    devices = option(cmdline.build(guest(), paths(), TCG), "-device")
    assert "virtio-blk-pci,drive=root,id=dev-root,bootindex=0" in devices
    assert "ide-cd,drive=config,id=dev-config,bus=ide.0,unit=0" in devices


@pytest.mark.parametrize(("bus", "machine", "expected"), [
    ("ide", "pc", ["ide-hd,drive=d0,id=dev-d0,bus=ide.0,unit=0",
                   "ide-hd,drive=d1,id=dev-d1,bus=ide.0,unit=1",
                   "ide-hd,drive=d2,id=dev-d2,bus=ide.1,unit=0"]),
    ("sata", "pc", ["ahci,id=sata0", "ide-hd,drive=d0,id=dev-d0,bus=sata0.0",
                    "ide-hd,drive=d1,id=dev-d1,bus=sata0.1",
                    "ide-hd,drive=d2,id=dev-d2,bus=sata0.2"]),
    ("sata", "q35", ["ide-hd,drive=d0,id=dev-d0,bus=ide.0",
                     "ide-hd,drive=d1,id=dev-d1,bus=ide.1",
                     "ide-hd,drive=d2,id=dev-d2,bus=ide.2"]),
    ("ide", "pc-q35-7.2", ["ide-hd,drive=d0,id=dev-d0,bus=ide.0",
                           "ide-hd,drive=d1,id=dev-d1,bus=ide.1",
                           "ide-hd,drive=d2,id=dev-d2,bus=ide.2"]),
    ("scsi", "pc", ["virtio-scsi-pci,id=scsi0",
                    "scsi-hd,drive=d0,id=dev-d0,bus=scsi0.0,channel=0,scsi-id=0,lun=0",
                    "scsi-hd,drive=d1,id=dev-d1,bus=scsi0.0,channel=0,scsi-id=1,lun=0",
                    "scsi-hd,drive=d2,id=dev-d2,bus=scsi0.0,channel=0,scsi-id=2,lun=0"]),
])
def test_disk_buses(bus: str, machine: str, expected: list[str]) -> None:
    disks = tuple(Disk(f"d{i}", f"/i/d{i}", "qcow2", bus) for i in range(3))
    argv = cmdline.disk_args(disks, machine)
    assert option(argv, "-device") == expected


def test_ide_holds_four_disks_on_pc() -> None:
    disks = tuple(Disk(f"d{i}", f"/i/d{i}", "qcow2", "ide") for i in range(5))
    with pytest.raises(VirtDriverError, match="too many disks on the ide controller"):
        cmdline.disk_args(disks, "pc")


def test_unknown_bus_and_virtio_cdrom_are_refused() -> None:
    with pytest.raises(VirtDriverError, match="disk bus 'usb' is not supported"):
        cmdline.disk_args((Disk("d", "/d", "raw", "usb"),), "pc")
    with pytest.raises(VirtDriverError, match="cdrom can't sit on the virtio bus"):
        cmdline.disk_args((Disk("d", "/d", "raw", "virtio", "cdrom"),), "pc")


def test_user_nic_is_restricted_and_can_be_turned_off() -> None:
    argv = cmdline.build(guest(), paths(), TCG)
    assert option(argv, "-netdev") == ["user,id=net0,restrict=on"]
    assert "virtio-net-pci,netdev=net0,mac=fa:16:3e:3f:4a:5b,romfile=" in option(argv, "-device")
    argv = cmdline.build(guest(vif_model="e1000"), paths(), TCG)
    assert "e1000,netdev=net0,mac=fa:16:3e:3f:4a:5b,romfile=" in option(argv, "-device")
    off = cmdline.HostSettings(accel="tcg", network="none")
    assert "-netdev" not in cmdline.build(guest(), paths(), off)
    assert "-netdev" not in cmdline.build(guest(vif_model=None), paths(), TCG)


def test_host_network_taps_replace_the_user_nic() -> None:
    taps = (("tap0b9c3f4e-5a", "fa:16:3e:00:00:01"), ("tap1111aaaa-bb", "fa:16:3e:00:00:02"))
    argv = cmdline.build(guest(taps=taps), paths(), TCG)
    assert option(argv, "-netdev") == [
        "tap,id=net-tap0b9c3f4e-5a,ifname=tap0b9c3f4e-5a,script=no,downscript=no",
        "tap,id=net-tap1111aaaa-bb,ifname=tap1111aaaa-bb,script=no,downscript=no"]
    assert ("virtio-net-pci,id=nic-tap1111aaaa-bb,netdev=net-tap1111aaaa-bb,"
            "mac=fa:16:3e:00:00:02,romfile=") in option(argv, "-device")
    off = cmdline.HostSettings(accel="tcg", network="none")
    assert len(option(cmdline.build(guest(taps=taps), paths(), off), "-netdev")) == 2


def test_rng_tablet_and_video() -> None:
    argv = cmdline.build(guest(rng=True, usb_tablet=True, video="cirrus"), paths(), TCG)
    assert "virtio-rng-pci,rng=rng0" in option(argv, "-device")
    assert option(argv, "-object") == ["rng-random,id=rng0,filename=/dev/urandom"]
    assert "usb-tablet" in option(argv, "-device")
    assert option(argv, "-vga") == ["cirrus"]


def test_direct_kernel_boot_leaves_boot_order_to_the_kernel() -> None:
    argv = cmdline.build(guest(kernel="/c/k", initrd="/c/r", kernel_cmdline="root=/dev/vda"),
                         paths(), TCG)
    assert option(argv, "-kernel") == ["/c/k"]
    assert option(argv, "-initrd") == ["/c/r"]
    assert option(argv, "-append") == ["root=/dev/vda"]
    assert not any("bootindex" in d for d in option(argv, "-device"))


def test_incoming_starts_stopped_and_waits_for_the_state() -> None:
    argv = cmdline.build(guest(), paths(), TCG, incoming=True)
    assert argv[-3:] == ["-S", "-incoming", "defer"]
    assert "-incoming" not in cmdline.build(guest(), paths(), TCG)


def test_spice_and_a_tcp_serial_port_when_the_host_gives_them() -> None:
    host = cmdline.HostSettings(accel="tcg", spice_listen="10.0.0.5", serial_listen="10.0.0.6")
    argv = cmdline.build(guest(), paths(), host, ports=cmdline.ConsolePorts(10001, 10002))
    assert option(argv, "-spice") == ["port=10001,addr=10.0.0.5,disable-ticketing=on"]
    assert (f"socket,id=serial0,host=10.0.0.6,port=10002,server=on,wait=off,"
            f"logfile=/i/{UUID}/console.log,logappend=on") in argv
    assert option(argv, "-serial") == ["chardev:serial0"]


def test_without_spice_or_serial_ports_the_serial_port_is_the_log_file() -> None:
    for host, ports in ((TCG, cmdline.ConsolePorts(10001, 10002)),
                        (cmdline.HostSettings(accel="tcg", spice_listen="::1",
                                              serial_listen="::1"), None)):
        argv = cmdline.build(guest(), paths(), host, ports=ports)
        assert "-spice" not in argv
        assert f"file,id=serial0,path=/i/{UUID}/console.log,append=on" in argv
        assert not any(a.startswith("socket,id=serial0") for a in argv)
