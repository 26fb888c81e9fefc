"""The real `openstack` CLI shelves, unshelves and evacuates on a `novalet up` with two
fake compute hosts."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RunningCloud, fake_cloud

pytestmark = pytest.mark.integration


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[RunningCloud]:
    # the evacuation's source host is stopped: the cloud's exit code isn't checked
    yield from fake_cloud(tmp_path, "[DEFAULT]\nshelved_offload_time = -1\n"
                          "[fake]\nextra_hosts = 1\n", check_stop=False)


V2100 = ("--os-compute-api-version", "2.100")


def test_shelve_unshelve_and_evacuate(two_hosts: RunningCloud, tmp_path: Path) -> None:
    cloud = two_hosts
    admin = "novalet"
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"\0" * 65536)
    cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                    "--public", "img", cloud=admin)
    cloud.openstack("server", "create", "--flavor", "m1.tiny", "--image", "img",
                    "--wait", "vm", cloud=admin)
    cloud.openstack("server", "shelve", "--wait", "vm", cloud=admin)
    host = cloud.wait_server("vm", "SHELVED", *V2100)["OS-EXT-SRV-ATTR:host"]
    cloud.openstack("server", "unshelve", "--wait", "vm", cloud=admin)
    assert cloud.wait_server("vm", "ACTIVE", *V2100)["OS-EXT-SRV-ATTR:host"] == host  # in place
    # (the CLI offloads only servers it shelves itself: from ACTIVE)
    cloud.openstack("server", "shelve", "--offload", "--wait", "vm", cloud=admin)
    assert cloud.wait_server("vm", "SHELVED_OFFLOADED", *V2100)["OS-EXT-SRV-ATTR:host"] is None
    cloud.openstack("--os-compute-api-version", "2.91", "server", "unshelve", "--host",
                    "fake-host-2", "--wait", "vm", cloud=admin)
    assert cloud.wait_server("vm", "ACTIVE", *V2100)["OS-EXT-SRV-ATTR:host"] == "fake-host-2"

    hosts = cloud.openstack_json("compute", "service", "list", "--service", "nova-compute",
                                 cloud=admin)
    (first,) = {h["Host"] for h in hosts} - {"fake-host-2"}  # type: ignore[index,union-attr]
    cloud.openstack("--os-compute-api-version", "2.11", "compute", "service", "set",
                    "--down", "fake-host-2", "nova-compute", cloud=admin)
    # No --wait: python-openstackclient 10.5 waits for "ACTIVE" against a lower-cased
    # status, so it never returns (with Nova too).
    cloud.openstack("--os-compute-api-version", "2.94", "server", "evacuate", "vm",
                    cloud=admin)
    assert cloud.wait_server("vm", "ACTIVE", *V2100)["OS-EXT-SRV-ATTR:host"] == first
    migrations = cloud.openstack_json("--os-compute-api-version", "2.23", "server",
                                      "migration", "list", "--server", "vm", cloud=admin)
    assert [(m["Type"], m["Status"]) for m in migrations] == [  # type: ignore[index,union-attr]
        ("evacuation", "done")]
