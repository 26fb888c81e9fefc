"""The test image, built for real from Debian packages, boots under QEMU (TCG).

It is built once per image recipe into pytest's cache directory (downloads
cached beside it), then each test boots a copy: with a config drive, with the
metadata service (QEMU's user network forwarding 169.254.169.254 to a small
responder), and by direct kernel boot from an IDE disk. Every guest is shut
down by an ACPI power-off, which must make QEMU exit.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pycdlib
import pytest
from qemu.qmp import QMPClient

from novalet.image import testimage

pytestmark = pytest.mark.integration

QEMU = shutil.which("qemu-system-x86_64")
BOOT_TIMEOUT = 90.0
POWER_OFF_TIMEOUT = 30.0
SMBIOS = "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,uuid={uuid}"

KEY_1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7novaletkeyone one@test"
KEY_2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCnovaletkeytwo two@test"


@pytest.fixture(scope="session")
def image(guest_image: Path) -> Path:
    return guest_image


def make_config_drive(path: Path, meta_data: dict[str, object], user_data: bytes) -> None:
    """An ISO9660 config drive (Rock Ridge and Joliet names) labelled config-2."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, joliet=3, rock_ridge="1.09", vol_ident="config-2")
    iso.add_directory("/OPENSTACK", rr_name="openstack", joliet_path="/openstack")
    iso.add_directory("/OPENSTACK/LATEST", rr_name="latest", joliet_path="/openstack/latest")
    files = {"meta_data.json": json.dumps(meta_data).encode(), "user_data": user_data}
    for index, (name, data) in enumerate(files.items()):
        iso.add_fp(io.BytesIO(data), len(data), f"/OPENSTACK/LATEST/FILE{index}.;1",
                   rr_name=name, joliet_path=f"/openstack/latest/{name}")
    iso.write(str(path))
    iso.close()


@dataclass
class Guest:
    process: subprocess.Popen[bytes]
    serial: Path
    qmp_socket: Path
    started: float

    def console(self) -> str:
        return self.serial.read_text(errors="replace") if self.serial.exists() else ""

    def wait_for(self, pattern: str, timeout: float = BOOT_TIMEOUT) -> re.Match[str]:
        """The first match of `pattern` on the serial console, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.console())
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not on the console (qemu status "
                             f"{self.process.poll()}):\n{self.console()[-4000:]}")

    def qmp(self, command: str) -> object:
        async def execute() -> object:
            client = QMPClient("novalet-test")
            await client.connect(str(self.qmp_socket))
            try:
                return await client.execute(command)
            finally:
                await client.disconnect()

        return asyncio.run(execute())

    def power_off(self) -> int:
        """Press the ACPI power button; QEMU's exit status once the guest powered off."""
        assert self.qmp("query-status") == {"status": "running", "singlestep": False,
                                            "running": True}
        self.qmp("system_powerdown")
        try:
            return self.process.wait(timeout=POWER_OFF_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"qemu still runs {POWER_OFF_TIMEOUT:.0f} s after the ACPI "
                                 f"power-off:\n{self.console()[-3000:]}") from None


@pytest.fixture
def boot(tmp_path: Path, image: Path) -> Iterator[Callable[..., Guest]]:
    """boot(*qemu_args, uuid=...) starts QEMU on a copy of the image; all are killed after."""
    guests: list[Guest] = []

    def start(*args: str, uuid: str | None = None, disk_bus: str = "virtio") -> Guest:
        disk = tmp_path / f"disk{len(guests)}.qcow2"
        shutil.copyfile(image, disk)
        serial = tmp_path / f"serial{len(guests)}.log"
        qmp_socket = tmp_path / f"qmp{len(guests)}.sock"
        argv = [str(QEMU), "-accel", "tcg", "-m", "128", "-nodefaults", "-display", "none",
                "-serial", f"file:{serial}", "-qmp", f"unix:{qmp_socket},server=on,wait=off",
                "-drive", f"file={disk},format=qcow2,if={disk_bus}", *args]
        if uuid is not None:
            argv += ["-smbios", SMBIOS.format(uuid=uuid)]
        log = (tmp_path / f"qemu{len(guests)}.log").open("wb")
        guest = Guest(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), serial,
                      qmp_socket, time.monotonic())
        guests.append(guest)
        return guest

    try:
        yield start
    finally:
        for guest in guests:
            if guest.process.poll() is None:
                guest.process.kill()
                guest.process.wait(timeout=10)


def _report_boot(name: str, guest: Guest) -> None:
    print(f"{name}: ready {time.monotonic() - guest.started:.1f} s after qemu started",
          file=sys.stderr)


def test_config_drive_sets_hostname_keys_and_runs_user_data(boot: Callable[..., Guest],
                                                             tmp_path: Path) -> None:
    uuid = "7a1c0bde-5a5e-4d3f-9e1b-00000000c0de"
    make_config_drive(tmp_path / "config.iso", {
        "uuid": uuid, "name": "Config Test", "hostname": "config-test.novalocal",
        "public_keys": {"one": KEY_1 + "\n", "two": KEY_2},
        "keys": [{"name": "one", "type": "ssh", "data": KEY_1 + "\n"}],
        "launch_index": 0, "availability_zone": "nova", "devices": [],
        "meta": {"purpose": "test"},
    }, b"#!/bin/sh\necho \"USERDATA-RAN host=$(hostname) user=$(id -u)\"\n"
       b"sed 's/^/AUTHORIZED /' /root/.ssh/authorized_keys\n")
    # The SMBIOS uuid differs: the metadata's wins.
    guest = boot("-drive", f"file={tmp_path / 'config.iso'},media=cdrom,if=ide",
                 uuid="11111111-2222-4333-8444-555555555555")

    guest.wait_for(rf"NOVALET-GUEST-READY uuid={uuid} hostname=config-test\r?\n")
    _report_boot("config drive boot", guest)
    console = guest.console()
    assert "novalet-agent: metadata from the config drive on /dev/sr0" in console
    assert "USERDATA-RAN host=config-test user=0" in console
    assert f"AUTHORIZED {KEY_1}" in console and f"AUTHORIZED {KEY_2}" in console
    assert "installed 2 public key(s) for root" in console
    mem_kb = int(guest.wait_for(r"NOVALET-GUEST-MEMORY mem_kb=(\d+)").group(1))
    assert 64 * 1024 < mem_kb <= 128 * 1024
    assert re.search(r"NOVALET-GUEST-UPTIME seconds=\d+\.\d+ boot=1", console)
    assert console.index("USERDATA-RAN") < console.index("NOVALET-GUEST-READY")

    assert guest.power_off() == 0
    assert "power button pressed" in guest.console()


METADATA_RESPONDER = """\
import json, sys
request = sys.stdin.buffer.readline().split()
while sys.stdin.buffer.readline() not in (b"\\r\\n", b"\\n", b""):
    pass
files = json.loads(open(sys.argv[1]).read())
body = files.get(request[1].decode() if len(request) > 1 else "")
if body is None:
    sys.stdout.buffer.write(b"HTTP/1.0 404 Not Found\\r\\nContent-Length: 0\\r\\n\\r\\n")
else:
    data = body.encode()
    sys.stdout.buffer.write(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(data) + data)
sys.stdout.buffer.flush()
"""


def test_metadata_service_then_reboot_runs_user_data_once(boot: Callable[..., Guest],
                                                         tmp_path: Path) -> None:
    uuid = "5e5e5e5e-0000-4000-8000-00000000beef"
    files = {
        "/openstack/latest/meta_data.json": json.dumps(
            {"uuid": uuid, "hostname": "from-service", "public_keys": {"one": KEY_1}}),
        "/openstack/latest/user_data":
            "#!/bin/sh\necho USERDATA-FROM-SERVICE\n(sleep 1; reboot) &\n",
    }
    (tmp_path / "files.json").write_text(json.dumps(files))
    (tmp_path / "responder.py").write_text(METADATA_RESPONDER)
    forward = (f"tcp:169.254.169.254:80-cmd:{sys.executable} {tmp_path / 'responder.py'} "
               f"{tmp_path / 'files.json'}")
    # QEMU's user network in 169.254/16 so the metadata address is on it; DHCP from QEMU.
    guest = boot("-netdev", f"user,id=n0,net=169.254.0.0/16,guestfwd={forward}",
                 "-device", "virtio-net-pci,netdev=n0")

    guest.wait_for(rf"NOVALET-GUEST-READY uuid={uuid} hostname=from-service")
    _report_boot("metadata service boot", guest)
    guest.wait_for(r"NOVALET-GUEST-UPTIME seconds=\S+ boot=2")
    guest.wait_for(r"user_data already ran for instance " + uuid)
    second = guest.wait_for(r"NOVALET-GUEST-READY uuid=(\S+) hostname=(\S+)\r?\n(?s:.*)"
                            r"NOVALET-GUEST-READY uuid=(\S+) hostname=(\S+)\r?\n")
    assert second.groups()[2:] == (uuid, "from-service")
    console = guest.console()
    assert "eth0 has address 169.254." in console
    assert "metadata from http://169.254.169.254/openstack/latest" in console
    assert console.count("USERDATA-FROM-SERVICE") == 1

    assert guest.power_off() == 0


def test_direct_kernel_boot_finds_the_root_on_an_ide_disk(boot: Callable[..., Guest],
                                                          image: Path) -> None:
    # Nova's default kernel line names the whole disk; the initramfs looks further.
    guest = boot("-kernel", str(testimage.kernel_path(image)),
                 "-initrd", str(testimage.ramdisk_path(image)),
                 "-append", "root=/dev/sda console=tty0 console=ttyS0",
                 uuid="ABCDEF01-2345-4678-9ABC-DEF012345678", disk_bus="ide")

    guest.wait_for(r"NOVALET-GUEST-READY uuid=abcdef01-2345-4678-9abc-def012345678 "
                   r"hostname=novalet\r?\n")
    _report_boot("direct kernel boot (IDE)", guest)
    console = guest.console()
    assert "EXT4-fs (sda2): mounted filesystem" in console
    assert "no metadata: no config drive, no metadata service" in console

    assert guest.power_off() == 0
