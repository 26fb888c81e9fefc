"""The real `openstack` CLI drives the smaller server actions against `novalet up`
(fake driver, soft delete on): server set --state, server backup create, server dump
create, server delete then server restore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RunningCloud, fake_cloud

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def soft_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    yield from fake_cloud(tmp_path_factory.mktemp("soft"),
                          "[DEFAULT]\nreclaim_instance_interval = 3600\n")


DEMO = "novalet-demo"


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
    assert soft_cloud.show_server("vm1", cloud=DEMO)["status"] == "ERROR"
    denied = cli("server", "set", "--auto-approve", "--state", "active", "vm1", check=False)
    assert denied.returncode != 0 and "reset_state" in denied.stderr
    cli("server", "set", "--auto-approve", "--state", "active", sid, cloud="novalet")
    soft_cloud.wait_server("vm1", "ACTIVE", cloud=DEMO)

    backup = soft_cloud.openstack_json("server", "backup", "create", "--name", "nightly",
                                       "--type", "daily", "--rotate", "1", "--wait", "vm1")
    assert isinstance(backup, dict) and backup["name"] == "nightly"
    image = soft_cloud.openstack_json("image", "show", "nightly")
    assert isinstance(image, dict)
    assert image["properties"]["backup_type"] == "daily"
    soft_cloud.wait_server("vm1", "ACTIVE", cloud=DEMO)

    cli("--os-compute-api-version", "2.17", "server", "dump", "create", "vm1")
    actions = soft_cloud.openstack_json("server", "event", "list", "vm1")
    assert isinstance(actions, list)
    assert {"trigger_crash_dump", "createBackup", "resetState"} <= {
        a["Action"] for a in actions}

    cli("server", "delete", "vm1")
    soft_cloud.wait_server("vm1", "SOFT_DELETED", cloud=DEMO)
    cli("server", "restore", "vm1")
    soft_cloud.wait_server("vm1", "ACTIVE", cloud=DEMO)
