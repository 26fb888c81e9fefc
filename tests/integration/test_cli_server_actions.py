"""The real `openstack` CLI drives the smaller server actions against `novalet up`
(fake driver, soft delete on): server set --state, server backup create, server dump
create, server delete then server restore."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RunningCloud, start_cloud, stop_cloud

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def soft_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    root = tmp_path_factory.mktemp("soft")
    conf = root / "soft-delete.conf"
    conf.write_text("[DEFAULT]\nreclaim_instance_interval = 3600\n")
    cloud = start_cloud(root / "state", "--driver", "fake", "--metadata-port", "0",
                        "--config-file", str(conf))
    try:
        yield cloud
    finally:
        assert stop_cloud(cloud) == 0, cloud.tail()


def _show(cloud: RunningCloud, name: str, admin: bool = False) -> dict[str, Any]:
    shown = cloud.openstack_json("server", "show", name,
                                 cloud="novalet" if admin else "novalet-demo")
    assert isinstance(shown, dict)
    return shown


def _wait(cloud: RunningCloud, name: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = _show(cloud, name)
        if shown["status"] == status and not shown["OS-EXT-STS:task_state"]:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {status}: {shown}")


def _boot(cloud: RunningCloud, name: str, tmp_path: Path) -> str:
    disk = tmp_path / "disk.qcow2"
    if not disk.exists():
        disk.write_bytes(b"\0" * 65536)
        cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                        "cli-image")
    server = cloud.openstack_json("server", "create", "--flavor", "m1.tiny", "--image",
                                  "cli-image", "--wait", name)
    assert isinstance(server, dict)
    return str(server["id"])


def test_state_backup_dump_delete_restore(soft_cloud: RunningCloud, tmp_path: Path) -> None:
    cli = soft_cloud.openstack
    sid = _boot(soft_cloud, "vm1", tmp_path)  # the admin names it by id (another project)
    cli("server", "set", "--auto-approve", "--state", "error", sid, cloud="novalet")
    assert _show(soft_cloud, "vm1")["status"] == "ERROR"
    denied = cli("server", "set", "--auto-approve", "--state", "active", "vm1", check=False)
    assert denied.returncode != 0 and "reset_state" in denied.stderr
    cli("server", "set", "--auto-approve", "--state", "active", sid, cloud="novalet")
    _wait(soft_cloud, "vm1", "ACTIVE")

    backup = soft_cloud.openstack_json("server", "backup", "create", "--name", "nightly",
                                       "--type", "daily", "--rotate", "1", "--wait", "vm1")
    assert isinstance(backup, dict) and backup["name"] == "nightly"
    image = soft_cloud.openstack_json("image", "show", "nightly")
    assert isinstance(image, dict)
    assert image["properties"]["backup_type"] == "daily"
    _wait(soft_cloud, "vm1", "ACTIVE")

    cli("--os-compute-api-version", "2.17", "server", "dump", "create", "vm1")
    actions = soft_cloud.openstack_json("server", "event", "list", "vm1")
    assert isinstance(actions, list)
    assert {"trigger_crash_dump", "createBackup", "resetState"} <= {
        a["Action"] for a in actions}

    cli("server", "delete", "vm1")
    _wait(soft_cloud, "vm1", "SOFT_DELETED")
    cli("server", "restore", "vm1")
    _wait(soft_cloud, "vm1", "ACTIVE")
