"""Real guests: the `openstack` CLI drives a QEMU-backed `novalet up` through every
lifecycle operation, checking what the guest itself prints on its serial console."""

from __future__ import annotations

import base64
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalet.image.testimage import builder
from tests.integration.conftest import RunningCloud, qemu_cloud, start_cloud

pytestmark = pytest.mark.integration

CONF = """[DEFAULT]
compute_driver = qemu
sync_power_state_interval = 2
shutdown_timeout = 20
[network]
fixed_range = 10.232.0.0/24
flat_network_bridge = nvbrguest
[qemu]
virt_type = auto
reboot_timeout = 20
"""
# Prints the guest's uptime every second, so a test can tell a resumed guest
# (uptime goes on) from a rebooted one (uptime starts again).
TICKER = "#!/bin/sh\n(while true; do echo NOVALET-TICK $(cut -d' ' -f1 /proc/uptime) >/dev/ttyS0;" \
         " sleep 1; done) &\n"
MARKER = re.compile(r"NOVALET-GUEST-READY uuid=(\S+) hostname=(\S+)")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path
          ) -> Iterator[RunningCloud]:
    with qemu_cloud(tmp_path_factory.mktemp("qemu-cloud"), guest_image, CONF,
                    ["nvbrguest"], flavors={"t.small": 128, "t.big": 192}) as running:
        yield running


def console(cloud: RunningCloud, name: str) -> str:
    return cloud.openstack("console", "log", "show", name).stdout


def wait_console(cloud: RunningCloud, name: str, pattern: str, count: int = 1,
                 timeout: float = 120, after: int = 0) -> str:
    """The console log (past its first `after` characters) once `pattern` appears
    `count` times in it."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = console(cloud, name)[after:]
        if len(re.findall(pattern, text)) >= count:
            return text
        time.sleep(1)
    raise AssertionError(f"{pattern!r} x{count} never appeared on {name}'s console:\n"
                         f"{text[-3000:]}\n--- server log ---\n{cloud.tail(60)}")


def wait_status(cloud: RunningCloud, name: str, status: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    shown: dict = {}
    while time.monotonic() < deadline:
        shown = cloud.openstack_json("server", "show", name)  # type: ignore[assignment]
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return shown
        if shown["status"] == "ERROR" and status != "ERROR":
            raise AssertionError(f"{name} went to ERROR: {shown.get('fault')}")
        time.sleep(1)
    raise AssertionError(f"{name} never reached {status}: {shown}\n{cloud.tail(60)}")


def last_tick(text: str) -> float:
    return float(re.findall(r"NOVALET-TICK ([\d.]+)", text)[-1])


def qemu_pid(uuid: str) -> int | None:
    result = subprocess.run(["pgrep", "-f", f"qemu-system.*{uuid}"], capture_output=True,
                            text=True)
    pids = [int(p) for p in result.stdout.split()]
    return pids[0] if pids else None


def test_boot_reboot_stop_start_pause_suspend(cloud: RunningCloud, tmp_path: Path) -> None:
    user_data = tmp_path / "ticker.sh"
    user_data.write_text(TICKER)
    server = cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                  "novalet-tiny", "--user-data", str(user_data), "--wait",
                                  "vm1")
    uuid = server["id"]  # type: ignore[index]
    text = wait_console(cloud, "vm1", f"NOVALET-GUEST-READY uuid={uuid} hostname=vm1")
    assert "NOVALET-GUEST-MEMORY" in text
    # user_data runs on the first boot only, so the ticker runs until the first reboot.
    cloud.openstack("server", "pause", "vm1")
    wait_status(cloud, "vm1", "PAUSED")
    cloud.openstack("server", "unpause", "vm1")
    wait_status(cloud, "vm1", "ACTIVE")
    before = last_tick(wait_console(cloud, "vm1", "NOVALET-TICK", count=3))
    cloud.openstack("server", "suspend", "vm1")
    wait_status(cloud, "vm1", "SUSPENDED")
    assert qemu_pid(uuid) is None
    cloud.openstack("server", "resume", "vm1")
    wait_status(cloud, "vm1", "ACTIVE")
    time.sleep(3)
    text = console(cloud, "vm1")
    assert last_tick(text) > before, "no ticks after resume: the guest did not go on"
    assert len(re.findall("NOVALET-GUEST-READY", text)) == 1, "resume rebooted the guest"
    cloud.openstack("server", "reboot", "--wait", "vm1")
    wait_console(cloud, "vm1", "NOVALET-GUEST-READY", count=2)
    cloud.openstack("server", "reboot", "--hard", "--wait", "vm1")
    wait_console(cloud, "vm1", "NOVALET-GUEST-READY", count=3)
    cloud.openstack("server", "stop", "vm1")
    wait_status(cloud, "vm1", "SHUTOFF")
    assert qemu_pid(uuid) is None
    cloud.openstack("server", "start", "vm1")
    wait_status(cloud, "vm1", "ACTIVE")
    wait_console(cloud, "vm1", "NOVALET-GUEST-READY", count=4)


def test_snapshot_boots_a_second_server(cloud: RunningCloud) -> None:
    cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                         "novalet-tiny", "--wait", "snap-src")
    wait_console(cloud, "snap-src", "NOVALET-GUEST-READY")
    cloud.openstack("server", "image", "create", "--name", "snap", "--wait", "snap-src")
    image = cloud.openstack_json("image", "show", "snap")
    assert image["status"] == "active"  # type: ignore[index]
    copy = cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                "snap", "--wait", "from-snap")
    wait_console(cloud, "from-snap",
                 f"NOVALET-GUEST-READY uuid={copy['id']} hostname=from-snap")  # type: ignore[index]


def test_rescue_rebuild_resize(cloud: RunningCloud) -> None:
    server = cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                  "novalet-tiny", "--wait", "vm2")
    uuid = server["id"]  # type: ignore[index]
    wait_console(cloud, "vm2", "NOVALET-GUEST-READY")
    cloud.openstack("server", "rescue", "vm2")
    wait_status(cloud, "vm2", "RESCUE")
    wait_console(cloud, "vm2", "NOVALET-GUEST-READY", count=2)
    cloud.openstack("server", "unrescue", "vm2")
    wait_status(cloud, "vm2", "ACTIVE")
    wait_console(cloud, "vm2", "NOVALET-GUEST-READY", count=3)
    seen = len(console(cloud, "vm2"))  # only what the rebuilt guest prints counts
    cloud.openstack("server", "rebuild", "--image", "novalet-tiny", "--wait", "vm2")
    text = wait_console(cloud, "vm2", f"NOVALET-GUEST-READY uuid={uuid}", count=1,
                        after=seen)
    assert re.findall(r"boot=(\d+)", text)[-1] == "1", "rebuild kept the old disk"
    mem_small = int(re.findall(r"mem_kb=(\d+)", text)[-1])
    seen = len(console(cloud, "vm2"))
    cloud.openstack("server", "resize", "--flavor", "t.big", "--wait", "vm2")
    assert cloud.openstack_json("server", "show", "vm2")["status"] == "VERIFY_RESIZE"  # type: ignore[index]
    text = wait_console(cloud, "vm2", "NOVALET-GUEST-MEMORY", count=1, after=seen)
    assert int(re.findall(r"mem_kb=(\d+)", text)[-1]) > mem_small
    cloud.openstack("server", "resize", "confirm", "vm2")
    wait_status(cloud, "vm2", "ACTIVE")
    cloud.openstack("server", "resize", "--flavor", "t.small", "--wait", "vm2")
    cloud.openstack("server", "resize", "revert", "vm2")
    shown = wait_status(cloud, "vm2", "ACTIVE")
    assert shown["flavor"]["name"] == "t.big"


def test_guest_poweroff_is_shutoff_and_restart_keeps_guests(cloud: RunningCloud,
                                                             tmp_path: Path) -> None:
    script = tmp_path / "off.sh"
    script.write_text("#!/bin/sh\n(sleep 3; poweroff) &\n")
    cloud.openstack("server", "create", "--flavor", "t.small", "--image", "novalet-tiny",
                    "--user-data", str(script), "--wait", "self-off")
    wait_status(cloud, "self-off", "SHUTOFF", timeout=90)
    keeper = cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                  "novalet-tiny", "--wait", "keeper")
    uuid = keeper["id"]  # type: ignore[index]
    wait_console(cloud, "keeper", "NOVALET-GUEST-READY")
    pid = qemu_pid(uuid)
    assert pid is not None
    cloud.process.kill()  # kill -9: no chance to tidy up
    cloud.process.wait()
    assert qemu_pid(uuid) == pid, "killing the compute service touched the guest"
    restarted = start_cloud(cloud.state_dir, "--config-file",
                            str(cloud.state_dir.parent / "novalet.conf"))
    cloud.process, cloud.port, cloud.log = restarted.process, restarted.port, restarted.log
    shown = wait_status(cloud, "keeper", "ACTIVE")
    assert shown["OS-EXT-STS:power_state"] == 1 or shown["power_state"] == "Running"
    assert qemu_pid(uuid) == pid


def test_delete_leaves_nothing(cloud: RunningCloud) -> None:
    server = cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                  "novalet-tiny", "--wait", "doomed")
    uuid = server["id"]  # type: ignore[index]
    assert qemu_pid(uuid) is not None
    cloud.openstack("server", "delete", "--wait", "doomed")
    assert qemu_pid(uuid) is None
    leftovers = [p for p in cloud.state_dir.rglob(f"*{uuid}*")]
    assert leftovers == []
    assert not any(uuid in entry for entry in os.listdir("/tmp"))
    assert allocations(cloud, uuid) == []


def allocations(cloud: RunningCloud, uuid: str) -> list[tuple[str, int]]:
    """What placement still holds for an instance (read from the cloud's database)."""
    with sqlite3.connect(cloud.state_dir / "novalet.sqlite") as db:
        return db.execute("SELECT resource_class, used FROM allocations WHERE consumer_id "
                          "LIKE ?", (f"{uuid}%",)).fetchall()


def test_direct_kernel_boot(cloud: RunningCloud) -> None:
    kernel = cloud.openstack_json("image", "show", "novalet-tiny-kernel")["id"]  # type: ignore[index]
    ramdisk = cloud.openstack_json("image", "show", "novalet-tiny-ramdisk")["id"]  # type: ignore[index]
    cloud.openstack("image", "create", "--file", str(builder.default_output(cloud.state_dir)),
                    "--disk-format", "qcow2", "--property", f"kernel_id={kernel}",
                    "--property", f"ramdisk_id={ramdisk}", "tiny-direct")
    server = cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                  "tiny-direct", "--wait", "direct")
    wait_console(cloud, "direct", f"NOVALET-GUEST-READY uuid={server['id']}")  # type: ignore[index]
    cmdline = (cloud.state_dir / "instances" / server["id"]).glob("*.json")  # type: ignore[index]
    assert any(kernel in path.read_text() for path in cmdline)
    cloud.openstack("server", "delete", "--wait", "direct")


def test_bad_images_fail_with_clear_faults(cloud: RunningCloud, tmp_path: Path) -> None:
    junk = tmp_path / "junk.qcow2"
    junk.write_bytes(base64.b64encode(os.urandom(30000)))
    cloud.openstack("image", "create", "--file", str(junk), "--disk-format", "qcow2",
                    "not-a-disk")
    big = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "3G"], check=True)
    cloud.openstack("image", "create", "--file", str(big), "--disk-format", "qcow2",
                    "too-big")
    corrupt = cloud.openstack_json("image", "create", "--file", str(builder.default_output(
        cloud.state_dir)), "--disk-format", "qcow2", "corrupt")
    stored = next(cloud.state_dir.joinpath("images").rglob(corrupt["id"]))  # type: ignore[index]
    with stored.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * 512)
    for image, words in (("not-a-disk", "qcow2"), ("too-big", "disk"),
                         ("corrupt", "does not match")):
        cloud.openstack("server", "create", "--flavor", "t.small", "--image", image,
                        f"bad-{image}")
        fault = wait_status(cloud, f"bad-{image}", "ERROR")["fault"]
        assert words in fault["message"], (image, fault)
    for image in ("not-a-disk", "too-big", "corrupt"):
        uuid = cloud.openstack_json("server", "show", f"bad-{image}")["id"]  # type: ignore[index]
        assert allocations(cloud, uuid) == []
        assert not (cloud.state_dir / "instances" / uuid).exists()
        cloud.openstack("server", "delete", "--wait", f"bad-{image}")
    assert not list(cloud.state_dir.rglob("*.part"))
