"""A real QEMU guest booted onto a chosen host of a multi-process cloud: the
compute and network services of `qemu-host` are processes of their own, beside
a fake-driver host, over RabbitMQ and PostgreSQL."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalet.image.testimage import builder
from tests.multihost.conftest import Cloud, deployment, wait_for

pytestmark = pytest.mark.integration
BRIDGE = "nvbrmh"
# The guest reports the address DHCP gave it on its serial console.
USER_DATA = ("#!/bin/sh\necho NOVALET-ADDR $(ip -4 -o addr show eth0 | "
             "sed -n 's/.*inet \\([0-9.]*\\).*/\\1/p') >/dev/ttyS0\n")


def place_image(guest_image: Path, state: Path) -> None:
    """Where the API's first start finds the test image and publishes it."""
    target = builder.default_output(state)
    target.parent.mkdir(parents=True, exist_ok=True)
    for src, dst in ((guest_image, target),
                     (builder.kernel_path(guest_image), builder.kernel_path(target)),
                     (builder.ramdisk_path(guest_image), builder.ramdisk_path(target))):
        shutil.copyfile(src, dst)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str],
          guest_image: Path) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("multihost-qemu")
    place_image(guest_image, root / "controller")
    for dep, database in deployment(
            root, backing, ["fake-host", "qemu-host"],
            options={"network": {"fixed_range": "10.233.0.0/24",
                                 "flat_network_bridge": BRIDGE}},
            host_options={"qemu-host": {"DEFAULT": {"compute_driver": "qemu"}}}):
        dep.start("network", "qemu-host")
        cloud = Cloud(dep, database)
        try:
            yield cloud
        finally:
            cloud.delete_all()
            # nova-network's proxies answer below 2.36
            net = cloud.api("GET", "/os-networks", version="2.35").json()["networks"]
            for network in net:
                cloud.api("DELETE", f"/os-networks/{network['id']}", version="2.35")
            wait_for(lambda: not _bridge_exists(), 30, f"{BRIDGE} left behind")


def _bridge_exists() -> bool:
    return subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0


def allow_ping_from_the_host(cloud: Cloud) -> None:
    groups = cloud.api("GET", "/os-security-groups", version="2.35").json()
    default = next(g for g in groups["security_groups"] if g["name"] == "default")
    cloud.api("POST", "/os-security-group-rules", version="2.35", json={
        "security_group_rule": {"parent_group_id": default["id"], "ip_protocol": "icmp",
                                "from_port": -1, "to_port": -1, "cidr": "0.0.0.0/0"}})


def console(cloud: Cloud, server_id: str) -> str:
    resp = cloud.api("POST", f"/servers/{server_id}/action",
                     json={"os-getConsoleOutput": {}})
    return str(resp.json()["output"])


def test_a_real_guest_boots_on_the_chosen_host(cloud: Cloud) -> None:
    allow_ping_from_the_host(cloud)
    flavor = cloud.api("POST", "/flavors", json={"flavor": {
        "name": "t.small", "ram": 128, "vcpus": 1, "disk": 1}}).json()["flavor"]["id"]
    images = cloud.http.get("/image/v2/images?name=novalet-tiny",
                            headers=cloud.headers).json()["images"]
    assert images, "the API did not publish the test image"
    body = {"server": {"name": "mh-guest", "imageRef": images[0]["id"],
                       "flavorRef": flavor, "networks": "auto",
                       "availability_zone": "nova:qemu-host",
                       "user_data": base64.b64encode(USER_DATA.encode()).decode()}}
    server_id = cloud.api("POST", "/servers", json=body).json()["server"]["id"]
    server = cloud.wait_settled([server_id], timeout=180)[server_id]
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["OS-EXT-SRV-ATTR:host"] == "qemu-host"
    address = next(iter(server["addresses"].values()))[0]["addr"]

    ready = f"NOVALET-GUEST-READY uuid={server_id}"  # the agent's last line at boot
    wait_for(lambda: ready in console(cloud, server_id), 180,
             "the guest never said it was ready")
    found = re.search(r"NOVALET-ADDR (\S+)", console(cloud, server_id))
    assert found and found.group(1) == address  # DHCP from qemu-host's network service
    wait_for(lambda: subprocess.run(["ping", "-c1", "-W1", address],
                                    capture_output=True).returncode == 0,
             30, f"the guest at {address} does not answer ping from the host")
