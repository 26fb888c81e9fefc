"""The QEMU command line of a guest, built from its GuestConfig: a pure function.

The SMBIOS system information is what Nova sets (cloud-init uses the product
name to pick the OpenStack datasource). Every drive names its format; disks
sit on the bus the image asked for (hw_disk_bus), with the controller that
bus needs on the chosen machine type.
"""

from __future__ import annotations

from dataclasses import dataclass

from novalet import __version__
from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.layout import Disk, GuestConfig, InstancePaths

QEMU = "qemu-system-x86_64"

DISK_BUSES = ("virtio", "ide", "sata", "scsi")

VIF_MODELS = {"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e",
              "rtl8139": "rtl8139", "ne2k_pci": "ne2k_pci", "pcnet": "pcnet"}

VIDEO_MODELS = {"vga": "std", "std": "std", "cirrus": "cirrus", "virtio": "virtio",
                "qxl": "qxl", "none": "none"}

VNC_DISPLAYS = 180
"""VNC displays (ports 5900 up to 6079) QEMU may try before giving up; stops short of 6080."""


@dataclass(frozen=True)
class HostSettings:
    """Host-wide choices that are not part of a guest's own description."""

    accel: str  # "kvm" or "tcg"
    tcg_tb_size: int = 32
    vnc_listen: str | None = "127.0.0.1"
    network: str = "user"  # "user" (isolated user-mode NIC) or "none"
    spice_listen: str | None = None  # None: no SPICE display
    serial_listen: str | None = None  # None: the serial port only writes console.log


@dataclass(frozen=True)
class ConsolePorts:
    """The ports one launch of a guest gives its SPICE display and serial port."""

    spice: int | None = None
    serial: int | None = None


def esc(value: str) -> str:
    """Escape a value for a QEMU option list, where a comma separates options."""
    return value.replace(",", ",,")


def build(config: GuestConfig, paths: InstancePaths, host: HostSettings,
          incoming: bool = False, ports: ConsolePorts | None = None,
          autostart: bool = False) -> list[str]:
    """argv for the guest (without -daemonize/-pidfile, which launching adds); ports: where
    its SPICE display and serial port listen (none of either without). An incoming
    guest waits for migrate-incoming, then stays paused (-S) unless `autostart`: a
    live migration's runs as soon as its state has arrived (unless paused at its source)."""
    ports = ports or ConsolePorts()
    argv = [QEMU, "-name", f"guest={esc(config.name)}", "-uuid", config.uuid,
            "-no-user-config", "-nodefaults", "-machine", esc(config.machine_type)]
    if host.accel == "kvm":
        argv += ["-accel", "kvm", "-cpu", "host"]
    else:
        argv += ["-accel", f"tcg,tb-size={host.tcg_tb_size}"]
    argv += ["-m", str(config.memory_mb),
             "-smp", f"{config.vcpus},sockets={config.vcpus},cores=1,threads=1",
             "-smbios", smbios(config.uuid),
             "-rtc", "base=utc", "-boot", "strict=on", "-msg", "timestamp=on",
             "-display", "none", "-vga", config.video]
    if host.vnc_listen:
        argv += ["-vnc", f"{_vnc_host(host.vnc_listen)}:0,to={VNC_DISPLAYS - 1}"]
    if host.spice_listen and ports.spice:
        argv += ["-spice", f"port={ports.spice},addr={esc(host.spice_listen)},"
                           "disable-ticketing=on"]
    # The QMP socket by its name relative to the instance directory, where QEMU
    # starts (see process.py): a full path could exceed the 107 bytes of sun_path.
    argv += ["-chardev", f"socket,id=qmp,path={esc(paths.qmp.name)},server=on,wait=off",
             "-mon", "chardev=qmp,mode=control",
             "-chardev", serial_chardev(paths, host, ports), "-serial", "chardev:serial0"]
    # A direct kernel boot owns boot index 0 (QEMU's linuxboot option ROM).
    argv += disk_args(config.disks, config.machine_type, boot_from_disk=not config.kernel)
    argv += nic_args(config, host)
    if config.rng:
        argv += ["-object", "rng-random,id=rng0,filename=/dev/urandom",
                 "-device", "virtio-rng-pci,rng=rng0"]
    if config.usb_tablet:
        argv += ["-usb", "-device", "usb-tablet"]
    if config.kernel:
        argv += ["-kernel", config.kernel]
        if config.initrd:
            argv += ["-initrd", config.initrd]
        if config.kernel_cmdline:
            argv += ["-append", config.kernel_cmdline]
    if incoming:
        argv += ([] if autostart else ["-S"]) + ["-incoming", "defer"]
    return argv


def serial_chardev(paths: InstancePaths, host: HostSettings, ports: ConsolePorts) -> str:
    """The guest's serial port: a TCP server a console client may attach to, or only a file.

    Either way everything the guest writes lands in console.log (appended across
    restarts): QEMU logs a TCP chardev's output whether or not a client is
    connected (measured with QEMU 7.2).
    """
    log = esc(str(paths.console_log))
    if host.serial_listen and ports.serial:
        return (f"socket,id=serial0,host={esc(host.serial_listen)},port={ports.serial},"
                f"server=on,wait=off,logfile={log},logappend=on")
    return f"file,id=serial0,path={log},append=on"


def smbios(uuid: str) -> str:
    fields = {"manufacturer": "OpenStack Foundation", "product": "OpenStack Nova",
              "version": __version__, "serial": uuid, "uuid": uuid,
              "family": "Virtual Machine"}
    return "type=1," + ",".join(f"{k}={esc(v)}" for k, v in fields.items())


def _vnc_host(listen: str) -> str:
    return f"[{listen}]" if ":" in listen else listen


def nic_ids(tap: str) -> tuple[str, str]:
    """QEMU's ids of the netdev and the device of the NIC on `tap`: named for the
    tap, so a NIC can be unplugged whatever was plugged before or after it."""
    return f"net-{tap}", f"nic-{tap}"


def nic_args(config: GuestConfig, host: HostSettings) -> list[str]:
    if config.vif_model is None:
        return []
    model = VIF_MODELS[config.vif_model]
    if config.taps:  # real networks: taps the network service plugged into its bridges
        args: list[str] = []
        for tap, mac in config.taps:
            netdev, device = nic_ids(tap)
            args += ["-netdev", f"tap,id={netdev},ifname={tap},script=no,downscript=no",
                     "-device", f"{model},id={device},netdev={netdev},mac={mac},romfile="]
        return args
    if host.network == "none":
        return []
    # restrict=on: the guest reaches neither the host nor the outside (the
    # network service will give guests real networks). romfile= skips the PXE
    # option ROM: guests never boot from the network here.
    return ["-netdev", "user,id=net0,restrict=on",
            "-device", f"{model},netdev=net0,mac={config.mac},romfile="]


def disk_args(disks: tuple[Disk, ...], machine_type: str,
              boot_from_disk: bool = True) -> list[str]:
    q35 = "q35" in machine_type
    argv: list[str] = []
    controllers: set[str] = set()
    next_slot: dict[str, int] = {}

    def slot(controller: str, limit: int) -> int:
        n = next_slot.get(controller, 0)
        if n >= limit:
            raise VirtDriverError(reason=f"too many disks on the {controller} controller "
                                         f"(at most {limit})")
        next_slot[controller] = n + 1
        return n

    for disk in disks:
        if disk.bus not in DISK_BUSES:
            raise VirtDriverError(reason=f"disk bus {disk.bus!r} is not supported; "
                                         f"use one of {', '.join(DISK_BUSES)}")
        drive = [f"if=none,id={disk.id},file={esc(disk.path)},format={disk.format}"]
        if disk.device == "cdrom":
            drive.append("media=cdrom")
        if disk.readonly or disk.device == "cdrom":
            drive.append("readonly=on")
        else:
            drive.append("discard=unmap")
        argv += ["-drive", ",".join(drive)]
        boot = (f",bootindex={disk.boot_index}"
                if boot_from_disk and disk.boot_index is not None else "")
        common = f"drive={disk.id},id=dev-{disk.id}{boot}"
        if disk.bus == "virtio":
            if disk.device == "cdrom":
                raise VirtDriverError(reason="a cdrom can't sit on the virtio bus")
            argv += ["-device", f"virtio-blk-pci,{common}"]
        elif disk.bus == "scsi":
            if "scsi0" not in controllers:
                controllers.add("scsi0")
                argv += ["-device", "virtio-scsi-pci,id=scsi0"]
            kind = "scsi-cd" if disk.device == "cdrom" else "scsi-hd"
            argv += ["-device", f"{kind},{common},bus=scsi0.0,channel=0,"
                                f"scsi-id={slot('scsi0', 256)},lun=0"]
        else:
            kind = "ide-cd" if disk.device == "cdrom" else "ide-hd"
            if q35:
                # The q35 machine's built-in ICH9 AHCI controller: six ports, ide.0-ide.5.
                argv += ["-device", f"{kind},{common},bus=ide.{slot('ahci', 6)}"]
            elif disk.bus == "ide":
                n = slot("ide", 4)
                argv += ["-device", f"{kind},{common},bus=ide.{n // 2},unit={n % 2}"]
            else:
                if "sata0" not in controllers:
                    controllers.add("sata0")
                    argv += ["-device", "ahci,id=sata0"]
                argv += ["-device", f"{kind},{common},bus=sata0.{slot('sata0', 6)}"]
    return argv
