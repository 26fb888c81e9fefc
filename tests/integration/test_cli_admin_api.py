"""The real `openstack` CLI on the admin API against a running `novalet up` (fake
driver): hypervisor list, show and stats, usage list, and server migration list after
a resize (confirmed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from novalet.virt.fake import FAKE_UPTIME
from tests.integration.conftest import RunningCloud

pytestmark = pytest.mark.integration


def _admin(cloud: RunningCloud, *args: str) -> Any:
    return cloud.openstack_json(*args, cloud="novalet")


def test_hypervisor_list_show_and_stats(running_cloud: RunningCloud) -> None:
    (hv,) = _admin(running_cloud, "hypervisor", "list")
    assert hv["Hypervisor Type"] == "fake" and hv["State"] == "up"
    shown = _admin(running_cloud, "hypervisor", "show", hv["Hypervisor Hostname"])
    assert shown["hypervisor_type"] == "fake"
    # The client parses the uptime line (FAKE_UPTIME) into its parts.
    assert FAKE_UPTIME.startswith(" 08:32:11 up 93 days, 18:25, 12 users")
    assert (shown["host_time"], shown["uptime"], shown["users"]) == (
        "08:32:11", "93 days, 18:25", "12")
    stats = _admin(running_cloud, "--os-compute-api-version", "2.87", "hypervisor", "stats",
                   "show")
    assert stats["count"] == 1 and stats["vcpus"] == 64


def test_usage_list_and_migration_list_after_resize(running_cloud: RunningCloud,
                                                    tmp_path: Path) -> None:
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"\0" * 4096)
    running_cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                            "--public", "usage-image", cloud="novalet")
    running_cloud.openstack("server", "create", "--flavor", "m1.tiny", "--image",
                            "usage-image", "--wait", "resized", cloud="novalet")
    running_cloud.openstack("server", "resize", "--flavor", "m1.small", "--wait", "resized",
                            cloud="novalet")
    _wait_status(running_cloud, "resized", "VERIFY_RESIZE")
    running_cloud.openstack("server", "resize", "confirm", "resized", cloud="novalet")
    _wait_status(running_cloud, "resized", "ACTIVE")
    migrations = _admin(running_cloud, "server", "migration", "list")
    assert [m["Status"] for m in migrations] in (["confirmed"], ["confirming"])
    assert migrations[0]["Type"] == "resize"
    usages = _admin(running_cloud, "usage", "list")
    (usage,) = usages
    (server,) = usage["Servers"]  # the JSON formatter shows the server usages themselves
    assert server["name"] == "resized" and server["flavor"] == "m1.small"
    assert usage["CPU Hours"] > 0
    running_cloud.openstack("server", "delete", "--wait", "resized", cloud="novalet")


def _wait_status(cloud: RunningCloud, name: str, status: str) -> None:
    deadline = time.monotonic() + 30
    shown: Any = {}
    while time.monotonic() < deadline:
        shown = _admin(cloud, "server", "show", name)
        if shown["status"] == status and not shown["OS-EXT-STS:task_state"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {status}: {shown}")
