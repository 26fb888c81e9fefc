"""The real `openstack server group` commands and `server create --hint group=…`
against `novalet up` with two fake compute hosts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RunningCloud, start_cloud, stop_cloud

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_host_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    root = tmp_path_factory.mktemp("groups")
    conf = root / "novalet.conf"
    conf.write_text("[fake]\nextra_hosts = 1\n")
    cloud = start_cloud(root / "state", "--driver", "fake", "--metadata-port", "0",
                        "--config-file", str(conf))
    try:
        yield cloud
    finally:
        assert stop_cloud(cloud) == 0, cloud.tail()


def _show(cloud: RunningCloud, name: str) -> dict[str, Any]:
    shown = cloud.openstack_json("server", "show", name, cloud="novalet")
    assert isinstance(shown, dict)
    return shown


def _wait(cloud: RunningCloud, name: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = _show(cloud, name)
        if shown["status"] == status:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {status}: {shown}")


def test_anti_affinity_group_through_the_cli(two_host_cloud: RunningCloud,
                                            tmp_path: Path) -> None:
    cloud = two_host_cloud
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"\0" * 4096)
    cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                    "--public", "group-image", cloud="novalet")
    group = cloud.openstack_json("server", "group", "create", "--policy", "anti-affinity",
                                 "spread", cloud="novalet")
    assert isinstance(group, dict)
    assert "anti-affinity" in str(group.get("policy") or group.get("policies"))
    for name in ("g1", "g2"):
        server = cloud.openstack_json("server", "create", "--flavor", "m1.tiny", "--image",
                                      "group-image", "--hint",
                                      f"group={group['id']}", "--wait", name,
                                      cloud="novalet")
        assert isinstance(server, dict) and server["status"] == "ACTIVE"
    hosts = {_show(cloud, n)["OS-EXT-SRV-ATTR:host"] for n in ("g1", "g2")}
    assert len(hosts) == 2
    shown = cloud.openstack_json("server", "group", "show", "spread", cloud="novalet")
    assert isinstance(shown, dict)
    assert len(str(shown["members"]).split(",")) == 2 or len(shown["members"]) == 2

    cloud.openstack("server", "create", "--flavor", "m1.tiny", "--image", "group-image",
                    "--hint", f"group={group['id']}", "g3",
                    cloud="novalet")
    failed = _wait(cloud, "g3", "ERROR")
    assert "ServerGroupAntiAffinityFilter" in str(failed["fault"])

    for name in ("g1", "g2", "g3"):
        cloud.openstack("server", "delete", "--wait", name, cloud="novalet")
    cloud.openstack("server", "group", "delete", "spread", cloud="novalet")
    assert cloud.openstack_json("server", "group", "list", cloud="novalet") == []
