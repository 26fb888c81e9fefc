"""The real `openstack` CLI against a running `novalet up`."""

import time
from pathlib import Path

import pytest

from tests.integration.conftest import RunningCloud, start_cloud, stop_cloud

pytestmark = pytest.mark.integration


def test_flavor_list_shows_standard_flavors(running_cloud: RunningCloud) -> None:
    flavors = running_cloud.openstack_json("flavor", "list")
    by_name = {f["Name"]: f for f in flavors}  # type: ignore[union-attr]
    assert set(by_name) >= {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"}
    assert by_name["m1.tiny"]["RAM"] == 512 and by_name["m1.xlarge"]["VCPUs"] == 8


def test_server_lifecycle(running_cloud: RunningCloud, tmp_path: Path) -> None:
    cli = running_cloud.openstack
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"\0" * 65536)
    image = running_cloud.openstack_json("image", "create", "--file", str(disk),
                                         "--disk-format", "qcow2", "cli-image")
    assert image["status"] == "active"  # type: ignore[index]
    key = tmp_path / "key"
    cli("keypair", "create", "--private-key", str(key), "k1")
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    server = running_cloud.openstack_json(
        "server", "create", "--flavor", "m1.tiny", "--image", "cli-image", "--key-name", "k1",
        "--wait", "vm1")
    assert server["status"] == "ACTIVE"  # type: ignore[index]
    assert server["key_name"] == "k1"  # type: ignore[index]
    listed = running_cloud.openstack_json("server", "list")
    assert [s["Name"] for s in listed] == ["vm1"]  # type: ignore[union-attr]
    shown = running_cloud.openstack_json("server", "show", "vm1")
    assert shown["flavor"]["name"] == "m1.tiny"  # type: ignore[index]
    assert shown["image"].startswith("cli-image")  # type: ignore[index]
    cli("server", "reboot", "--wait", "vm1")
    for action, status in (("stop", "SHUTOFF"), ("start", "ACTIVE")):
        cli("server", action, "vm1")  # no --wait for these in the CLI: poll
        _wait_status(running_cloud, "vm1", status)
    cli("server", "delete", "--wait", "vm1")
    assert running_cloud.openstack_json("server", "list") == []


def _wait_status(cloud: RunningCloud, name: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = cloud.openstack_json("server", "show", name)
        if shown["status"] == status and not shown["OS-EXT-STS:task_state"]:  # type: ignore[index]
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {status}: {shown}")


def test_demo_cannot_see_admin_servers(running_cloud: RunningCloud, tmp_path: Path) -> None:
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"\0" * 4096)
    running_cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                            "--public", "admin-image", cloud="novalet")
    server = running_cloud.openstack_json("server", "create", "--flavor", "m1.tiny",
                                          "--image", "admin-image", "--wait", "secret",
                                          cloud="novalet")
    result = running_cloud.openstack("server", "show", server["id"], check=False)  # type: ignore[index]
    assert result.returncode != 0 and "No Server found" in result.stderr
    result = running_cloud.openstack("server", "delete", server["id"], check=False)  # type: ignore[index]
    assert result.returncode != 0
    assert running_cloud.openstack_json("server", "list") == []
    admin_view = running_cloud.openstack_json("server", "list", "--all-projects",
                                              cloud="novalet")
    assert server["id"] in [s["ID"] for s in admin_view]  # type: ignore[index,union-attr]
    running_cloud.openstack("server", "delete", "--wait", "secret", cloud="novalet")


def test_up_restarts_on_same_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_cloud(state)
    assert stop_cloud(first) == 0
    second = start_cloud(state)
    try:
        flavors = second.openstack_json("flavor", "list")
        assert len(flavors) == 5  # type: ignore[arg-type]
    finally:
        assert stop_cloud(second) == 0
    assert "Traceback" not in first.log.read_text() + second.log.read_text()


def test_admin_flavor_management(running_cloud: RunningCloud) -> None:
    cli = running_cloud.openstack
    cli("flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "--private",
        "f-private", cloud="novalet")
    demo_sees = [f["Name"] for f in running_cloud.openstack_json("flavor", "list")]  # type: ignore[union-attr]
    assert "f-private" not in demo_sees
    cli("flavor", "set", "--property", "hw:cpu_policy=shared", "--project", "demo",
        "f-private", cloud="novalet")
    shown = running_cloud.openstack_json("flavor", "show", "f-private")
    assert shown["properties"] == {"hw:cpu_policy": "shared"}  # type: ignore[index]
    result = cli("flavor", "delete", "f-private", check=False)
    assert result.returncode != 0  # members may not delete flavors
    cli("flavor", "delete", "f-private", cloud="novalet")


def test_images_keypairs_limits_and_zones(running_cloud: RunningCloud, tmp_path: Path) -> None:
    cli = running_cloud.openstack
    data = tmp_path / "in.img"
    data.write_bytes(bytes(range(256)) * 512)
    cli("image", "create", "--file", str(data), "--disk-format", "raw", "roundtrip")
    out = tmp_path / "out.img"
    cli("image", "save", "--file", str(out), "roundtrip")
    assert out.read_bytes() == data.read_bytes()
    cli("image", "set", "--property", "os_distro=busybox", "roundtrip")
    assert running_cloud.openstack_json("image", "show", "roundtrip")[  # type: ignore[index]
        "properties"]["os_distro"] == "busybox"
    cli("image", "delete", "roundtrip")
    cli("keypair", "create", "--private-key", str(tmp_path / "k"), "k-list")
    assert "k-list" in [k["Name"] for k in running_cloud.openstack_json("keypair", "list")]  # type: ignore[union-attr]
    cli("keypair", "delete", "k-list")
    limits = running_cloud.openstack_json("limits", "show", "--absolute")
    by_name = {row["Name"]: row["Value"] for row in limits}  # type: ignore[union-attr]
    assert by_name["instances"] == 10 and "total_instances_used" in by_name
    zones = running_cloud.openstack_json("availability", "zone", "list")
    assert {"Zone Name": "nova", "Zone Status": "available"} in zones  # type: ignore[operator]
