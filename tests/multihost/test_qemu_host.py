"""Real QEMU guests booted onto a chosen host of a multi-process cloud: the
compute and network services of `qemu-host` are processes of their own, beside
a fake-driver host, over RabbitMQ and PostgreSQL.

Issue 14: the compute process used to build a host network driver of its own
whose plug rendered the firewall from an empty state, deleting its host's NAT,
floating IP and security group rules on every build, reboot, start, rescue,
resize or attach (until the network service's next resync, up to 60 s). The
compute host now asks its host's network service to plug (the VIF seam), so
rebooting one guest costs the other guests nothing."""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.multihost.conftest import Cloud, deployment, wait_for
from tests.multihost.qemu_hosts import (USER_DATA, allow_ping_from_the_host, console,
                                        pings, place_image, small_flavor)

pytestmark = pytest.mark.integration
BRIDGE = "nvbrmh"
FLOATING_POOL = "172.31.233.0/28"  # only NATed on this host (no public_interface)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str],
          guest_image: Path) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("multihost-qemu")
    place_image(guest_image, root / "controller")
    for dep, database in deployment(
            root, backing, ["fake-host", "qemu-host"],
            # no metadata service in these deployments: user data by config drive
            options={"DEFAULT": {"force_config_drive": True},
                     "network": {"fixed_range": "10.233.0.0/24",
                                 "flat_network_bridge": BRIDGE,
                                 "floating_ip_pools": f"public={FLOATING_POOL}"}},
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


def boot_on_qemu_host(cloud: Cloud, name: str) -> str:
    images = cloud.http.get("/image/v2/images?name=novalet-tiny",
                            headers=cloud.headers).json()["images"]
    assert images, "the API did not publish the test image"
    body = {"server": {"name": name, "imageRef": images[0]["id"],
                       "flavorRef": small_flavor(cloud), "networks": "auto",
                       "availability_zone": "nova:qemu-host",
                       "user_data": base64.b64encode(USER_DATA.encode()).decode()}}
    return str(cloud.api("POST", "/servers", json=body).json()["server"]["id"])


def test_a_real_guest_boots_on_the_chosen_host(cloud: Cloud) -> None:
    allow_ping_from_the_host(cloud)
    flavor = small_flavor(cloud)
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


def test_rebooting_a_guest_does_not_wipe_its_hosts_firewall(cloud: Cloud) -> None:
    """Two guests on one host of a multi-process cloud; one reboots while the other
    is pinged through its floating IP every 100 ms: no reply may be lost."""
    allow_ping_from_the_host(cloud)
    rebooted, pinged = boot_on_qemu_host(cloud, "mh-reboot"), boot_on_qemu_host(cloud, "mh-ping")
    servers = cloud.wait_settled([rebooted, pinged], timeout=180)
    for server in servers.values():
        assert server["status"] == "ACTIVE", server.get("fault")
        assert server["OS-EXT-SRV-ATTR:host"] == "qemu-host"
    floating = cloud.api("POST", "/os-floating-ips", version="2.35",
                         json={"pool": "public"}).json()["floating_ip"]
    address = floating["ip"]
    cloud.api("POST", f"/servers/{pinged}/action", version="2.35",
              json={"addFloatingIp": {"address": address}})
    wait_for(lambda: pings(address), 120,
             f"the guest never answered ping at its floating IP {address}")

    ping = subprocess.Popen(["ping", "-n", "-i", "0.1", "-W", "1", address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2)
        resp = cloud.api("POST", f"/servers/{rebooted}/action",
                         json={"reboot": {"type": "SOFT"}})
        assert resp.status_code == 202, resp.text
        wait_for(lambda: (cloud.servers()[rebooted].get("OS-EXT-STS:task_state") is None
                          and cloud.servers()[rebooted]["status"] == "ACTIVE"), 180,
                 "the reboot did not finish")
        time.sleep(5)  # past the reboot: a wiped firewall stays wiped until a resync
    finally:
        ping.send_signal(signal.SIGINT)
        output, _ = ping.communicate(timeout=10)
    found = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    assert found, output
    sent, received = int(found.group(1)), int(found.group(2))
    assert sent > 50, output
    assert received == sent, f"{sent - received} of {sent} pings lost during the reboot"
    cloud.api("POST", f"/servers/{pinged}/action", version="2.35",
              json={"removeFloatingIp": {"address": address}})
    cloud.api("DELETE", f"/os-floating-ips/{floating['id']}", version="2.35")
