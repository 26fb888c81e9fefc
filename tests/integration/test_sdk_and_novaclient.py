"""openstacksdk and python-novaclient against a running `novalet up`."""

import subprocess
from pathlib import Path

import openstack
import pytest

from tests.integration.conftest import BIN, RunningCloud

pytestmark = pytest.mark.integration


def _connect(cloud: RunningCloud, name: str = "novalet-demo") -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud=name))


def _image(conn: openstack.connection.Connection, tmp_path: Path, name: str) -> str:
    disk = tmp_path / f"{name}.qcow2"
    disk.write_bytes(b"\0" * 8192)
    image = conn.create_image(name, filename=str(disk), disk_format="qcow2",
                              container_format="bare", wait=True)
    return str(image.id)


def test_sdk_create_and_wait(running_cloud: RunningCloud, tmp_path: Path) -> None:
    conn = _connect(running_cloud)
    image_id = _image(conn, tmp_path, "sdk-image")
    flavor = conn.compute.find_flavor("m1.tiny")
    server = conn.compute.create_server(name="sdk-vm", image_id=image_id,
                                        flavor_id=flavor.id, networks="none")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    assert server.status == "ACTIVE"
    assert server.flavor.name == "m1.tiny" or server.flavor.original_name == "m1.tiny"
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    assert list(conn.compute.servers()) == []


def _nova(cloud: RunningCloud, *args: str) -> subprocess.CompletedProcess[str]:
    env = cloud.env
    env.update({"OS_AUTH_URL": f"http://127.0.0.1:{cloud.port}/identity/v3",
                "OS_USERNAME": "demo", "OS_PASSWORD": "demo", "OS_PROJECT_NAME": "demo",
                "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"})
    env.pop("OS_CLIENT_CONFIG_FILE")
    result = subprocess.run([str(BIN / "nova"), *args], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{cloud.tail()}"
    return result


def test_novaclient_boot_and_list(running_cloud: RunningCloud, tmp_path: Path) -> None:
    image_id = _image(_connect(running_cloud), tmp_path, "nova-image")
    out = _nova(running_cloud, "boot", "--flavor", "m1.tiny", "--image", image_id,
                "--nic", "none", "--poll", "nova-vm").stdout
    assert "nova-vm" in out
    listing = _nova(running_cloud, "list").stdout
    assert "nova-vm" in listing and "ACTIVE" in listing
    _nova(running_cloud, "delete", "nova-vm")
