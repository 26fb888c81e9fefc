"""nova-network's VLAN manager with real guests: each project gets its own network,
bridge and dnsmasq; guests of one project reach each other, another project's don't.

This kernel has no 802.1Q support, so the networks carry no VLAN sub-interface
(`vlan_interface` is empty: each project's layer 2 is its own bridge on this host).
test_linux_net checks the sub-interface itself where the kernel has it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningCloud, keystone_token, qemu_cloud
from tests.integration.test_guest_networking import (HTTPD, PROBE, boot, fixed_ip,
                                                     wait_console)

pytestmark = pytest.mark.integration

CONF = """[DEFAULT]
compute_driver = qemu
force_config_drive = false
[network]
network_manager = vlan
fixed_range = 10.236.0.0/24
network_size = 16
vlan_start = 3700
floating_ip_pools = public=172.31.236.0/28
"""
BRIDGES = ["nvbr3700", "nvbr3701"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path
          ) -> Iterator[RunningCloud]:
    with qemu_cloud(tmp_path_factory.mktemp("vlan-cloud"), guest_image, CONF,
                    BRIDGES) as running:
        yield running


def project_networks(cloud: RunningCloud) -> dict[str, tuple[int, str, str]]:
    """project id -> (vlan, bridge, cidr), as the admin sees os-networks."""
    base = f"http://127.0.0.1:{cloud.port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        networks = client.get("/compute/v2.1/os-networks", headers={
            "X-Auth-Token": keystone_token(client, "admin"),
            "OpenStack-API-Version": "compute 2.35"}).json()["networks"]
    return {n["project_id"]: (n["vlan"], n["bridge"], n["cidr"]) for n in networks}


def test_projects_are_isolated_and_members_reach_each_other(cloud: RunningCloud,
                                                             tmp_path: Path) -> None:
    web = boot(cloud, "web", HTTPD.format(name="web", extra=""), tmp_path)
    wait_console(cloud, "web", f"NOVALET-GUEST-READY uuid={web['id']} hostname=web")
    web_ip = fixed_ip(cloud, "web")

    # the same project: a second guest of demo's reaches web's httpd
    probe = PROBE.format(target=web_ip)
    boot(cloud, "friend", HTTPD.format(name="friend", extra=probe), tmp_path)
    wait_console(cloud, "friend", "NOVALET-PROBE ok")

    # another project: its guest gets its own network, metadata works, web is out of reach
    boot(cloud, "stranger", HTTPD.format(name="stranger", extra=probe), tmp_path,
         account="novalet")
    text = wait_console(cloud, "stranger", "(NOVALET-PROBE.*\n.*){4}", account="novalet")
    assert "NOVALET-GUEST-READY" in text and "hostname=stranger" in text, text[-2000:]
    assert "NOVALET-PROBE ok" not in text, text[-2000:]
    assert text.count("NOVALET-PROBE blocked") >= 4

    networks = project_networks(cloud)
    assert len(networks) == 2, networks
    (vlan_a, bridge_a, cidr_a), (vlan_b, bridge_b, cidr_b) = sorted(networks.values())
    assert (vlan_a, vlan_b) == (3700, 3701) and (bridge_a, bridge_b) == tuple(BRIDGES)
    stranger_ip = ipaddress.ip_address(fixed_ip(cloud, "stranger", account="novalet"))
    assert ipaddress.ip_address(web_ip) in ipaddress.ip_network(cidr_a)
    assert stranger_ip in ipaddress.ip_network(cidr_b)
    assert Path(f"/sys/class/net/{bridge_a}/brif").exists()
    assert Path(f"/sys/class/net/{bridge_b}/brif").exists()
    assert len(list(Path(f"/sys/class/net/{bridge_a}/brif").iterdir())) == 2  # web, friend
    assert len(list(Path(f"/sys/class/net/{bridge_b}/brif").iterdir())) == 1  # stranger
