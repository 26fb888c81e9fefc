"""A real QEMU guest shelved (its disk uploaded as an image, the guest destroyed) and
unshelved (booted again from that image), driven by the `openstack` CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RunningCloud, qemu_cloud
from tests.integration.test_real_guest import wait_console, wait_status

pytestmark = pytest.mark.integration

CONF = """[DEFAULT]
compute_driver = qemu
shutdown_timeout = 20
[network]
fixed_range = 10.241.0.0/24
flat_network_bridge = nvbrshelve
[qemu]
virt_type = auto
"""


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path
          ) -> Iterator[RunningCloud]:
    with qemu_cloud(tmp_path_factory.mktemp("qemu-shelve"), guest_image, CONF,
                    ["nvbrshelve"]) as running:
        yield running


def qemu_pids(uuid: str) -> list[int]:
    result = subprocess.run(["pgrep", "-f", f"qemu-system.*{uuid}"], capture_output=True,
                            text=True)
    return [int(p) for p in result.stdout.split()]


def test_shelve_offloads_the_guest_and_unshelve_boots_its_disk(cloud: RunningCloud,
                                                              tmp_path: Path) -> None:
    server = cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                  "novalet-tiny", "--wait", "shelf")
    uuid = server["id"]  # type: ignore[index]
    wait_console(cloud, "shelf", f"NOVALET-GUEST-READY uuid={uuid} hostname=shelf")
    first = qemu_pids(uuid)
    assert first
    cloud.openstack("server", "shelve", "--wait", "shelf")
    wait_status(cloud, "shelf", "SHELVED_OFFLOADED")  # shelved_offload_time 0
    assert qemu_pids(uuid) == []
    image = cloud.openstack_json("image", "show", "shelf-shelved")
    assert image["status"] == "active" and image["disk_format"] == "qcow2"  # type: ignore[index]
    cloud.openstack("server", "unshelve", "--wait", "shelf")
    wait_status(cloud, "shelf", "ACTIVE")
    again = qemu_pids(uuid)
    assert again and again != first  # a new guest, booted from the shelved disk
    wait_console(cloud, "shelf", f"NOVALET-GUEST-READY uuid={uuid} hostname=shelf")
    gone = cloud.openstack("image", "show", "shelf-shelved", check=False)
    assert gone.returncode != 0  # deleted once unshelved
