"""The real `openstack` CLI's server commands that name networks and security groups.
With the network API in the catalog, python-openstackclient resolves them through it
(as against Nova with Neutron): `server create --nic/--security-group` and `server
add/remove security group` send the compute API the group's Neutron id, which it takes
as Nova does besides a name; `server add/remove network` and `server add fixed ip` go
to os-interface with the network's id. (Its nova-network fallbacks, used when no
network service is in the catalog, no longer apply; novaclient at 2.35 and
tests/functional/test_network_api.py cover the proxies.)"""

from __future__ import annotations


import httpx
import pytest

from tests.integration.conftest import RunningCloud, keystone_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(running_cloud: RunningCloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A server booted by name of network and group; a second group, web, exists."""
    cloud = running_cloud
    disk = tmp_path_factory.mktemp("fallbacks") / "disk.qcow2"
    disk.write_bytes(b"\0" * 65536)
    cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                    "--public", "fallback-image", cloud="novalet")
    with httpx.Client(base_url=f"http://127.0.0.1:{cloud.port}", timeout=30) as client:
        resp = client.post("/compute/v2.1/os-security-groups",
                           headers={"X-Auth-Token": keystone_token(client)},
                           json={"security_group": {"name": "web", "description": "w"}})
        assert resp.status_code == 200, resp.text
    created = cloud.openstack_json(
        "server", "create", "--flavor", "m1.tiny", "--image", "fallback-image",
        "--nic", "net-id=private", "--security-group", "default", "--wait", "fb1")
    assert created["status"] == "ACTIVE"  # type: ignore[index]
    return "fb1"


def test_server_create_resolves_network_and_group_names(running_cloud: RunningCloud,
                                                        server: str) -> None:
    shown = running_cloud.openstack_json("server", "show", server)
    assert list(shown["addresses"]) == ["private"]  # type: ignore[index]
    assert shown["security_groups"] == [{"name": "default"}]  # type: ignore[index]
    unknown = running_cloud.openstack("server", "create", "--flavor", "m1.tiny", "--image",
                                      "fallback-image", "--nic", "net-id=nowhere", "fb2",
                                      check=False)
    assert unknown.returncode != 0 and "nowhere" in unknown.stderr


def test_server_add_and_remove_security_group(running_cloud: RunningCloud, server: str) -> None:
    cli = running_cloud.openstack
    cli("server", "add", "security", "group", server, "web")
    groups = running_cloud.openstack_json("server", "show", server)["security_groups"]  # type: ignore[index]
    assert sorted(g["name"] for g in groups) == ["default", "web"]
    cli("server", "remove", "security", "group", server, "web")
    groups = running_cloud.openstack_json("server", "show", server)["security_groups"]  # type: ignore[index]
    assert [g["name"] for g in groups] == ["default"]
    missing = cli("server", "add", "security", "group", server, "nope", check=False)
    assert missing.returncode != 0 and "nope" in missing.stderr


def test_server_add_and_remove_network_and_fixed_ip(running_cloud: RunningCloud,
                                                    server: str) -> None:
    cloud = running_cloud
    with httpx.Client(base_url=f"http://127.0.0.1:{cloud.port}", timeout=30) as client:
        networks = client.get("/compute/v2.1/os-networks", headers={
            "X-Auth-Token": keystone_token(client), "OpenStack-API-Version": "compute 2.35"}).json()
    private = next(n["id"] for n in networks["networks"] if n["label"] == "private")
    # by name: the CLI finds the network's id through the network API
    cloud.openstack("server", "add", "network", server, "private")
    added = cloud.openstack_json("server", "add", "fixed", "ip", "--fixed-ip-address",
                                 "10.0.0.99", server, private)
    assert added["Fixed IPs"][0]["ip_address"] == "10.0.0.99"  # type: ignore[index]
    addresses = cloud.openstack_json("server", "show", server)["addresses"]  # type: ignore[index]
    assert len(addresses["private"]) == 3 and "10.0.0.99" in addresses["private"]
    cloud.openstack("server", "remove", "network", server, private)
    assert cloud.openstack_json("server", "show", server)["addresses"] == {}  # type: ignore[index]
