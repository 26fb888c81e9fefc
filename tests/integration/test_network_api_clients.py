"""openstacksdk and the openstack CLI against the network API of a running `novalet up`,
found as clients find Neutron: the catalog's `network` service, whose URL is the
root serving the version document (keystoneauth picks v2.0 from it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest

from tests import cli_forkserver
from tests.integration.conftest import RunningCloud, start_cloud, stop_cloud

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCloud, Path]]:
    """A fake-driver cloud and its clouds.yaml (nothing about the network endpoint:
    the catalog names it)."""
    root = tmp_path_factory.mktemp("netapi")
    running = start_cloud(root / "state")
    try:
        yield running, running.clouds_yaml
    finally:
        assert stop_cloud(running) == 0, running.tail()


def _connect(clouds_yaml: Path, name: str) -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud=name))


def test_the_catalog_leads_clients_to_the_network_api(cloud: tuple[RunningCloud, Path]
                                                     ) -> None:
    conn = _connect(cloud[1], "novalet-demo")
    endpoint = conn.network.get_endpoint()
    assert endpoint.rstrip("/") == f"http://127.0.0.1:{cloud[0].port}/network/v2.0"
    assert conn.network.get("/extensions").status_code == 200


def test_sdk_network_crud(cloud: tuple[RunningCloud, Path]) -> None:
    conn = _connect(cloud[1], "novalet-demo")
    created = conn.network.create_network(name="sdk-net", description="from the sdk")
    assert created.status == "ACTIVE" and created.subnet_ids == []
    assert created.project_id == conn.current_project_id
    assert "sdk-net" in [n.name for n in conn.network.networks()]
    assert [n.id for n in conn.network.networks(name="sdk-net")] == [created.id]
    updated = conn.network.update_network(created, name="sdk-renamed", mtu=1400)
    assert (updated.name, updated.mtu) == ("sdk-renamed", 1400)
    assert conn.network.get_network(created.id).description == "from the sdk"
    conn.network.delete_network(created, ignore_missing=False)
    assert conn.network.find_network(created.id) is None
    with pytest.raises(openstack.exceptions.ForbiddenException):
        conn.network.create_network(name="not-mine", is_shared=True)
    admin = _connect(cloud[1], "novalet")
    shared = admin.network.create_network(name="sdk-shared", is_shared=True)
    assert shared.provider_network_type == "flat"
    assert shared.id in [n.id for n in conn.network.networks(is_shared=True)]
    admin.network.delete_network(shared)


def _openstack(cloud: tuple[RunningCloud, Path], *args: str, user: str = "novalet-demo"
               ) -> Any:
    running, clouds_yaml = cloud
    env = running.env
    env["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml)
    result = cli_forkserver.run(["--os-cloud", user, *args], env, timeout=120)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}\n{running.tail()}"
    return json.loads(result.stdout) if "json" in args else result.stdout


def test_cli_network_create_list_show_set_delete(cloud: tuple[RunningCloud, Path]) -> None:
    made = _openstack(cloud, "network", "create", "--description", "cli", "cli-net",
                      "-f", "json")
    assert made["name"] == "cli-net" and made["status"] == "ACTIVE"
    listed = _openstack(cloud, "network", "list", "-f", "json")
    assert made["id"] in [n["ID"] for n in listed]
    _openstack(cloud, "network", "set", "--name", "cli-renamed", "--disable", made["id"])
    shown = _openstack(cloud, "network", "show", made["id"], "-f", "json")
    assert shown["name"] == "cli-renamed" and shown["admin_state_up"] in ("DOWN", False)
    assert shown["description"] == "cli"
    _openstack(cloud, "network", "delete", "cli-renamed")
    listed = _openstack(cloud, "network", "list", "-f", "json")
    assert made["id"] not in [n["ID"] for n in listed]


def test_sdk_subnets_and_security_groups(cloud: tuple[RunningCloud, Path]) -> None:
    conn = _connect(cloud[1], "novalet-demo")
    network = conn.network.create_network(name="sdk-sub-net")
    subnet = conn.network.create_subnet(network_id=network.id, cidr="10.8.0.0/24",
                                        ip_version=4, name="sdk-sub",
                                        dns_nameservers=["192.0.2.53"])
    assert (subnet.gateway_ip, subnet.is_dhcp_enabled) == ("10.8.0.1", True)
    assert subnet.allocation_pools == [{"start": "10.8.0.2", "end": "10.8.0.254"}]
    assert [s.id for s in conn.network.subnets(network_id=network.id)] == [subnet.id]
    updated = conn.network.update_subnet(subnet, name="sdk-sub2", is_dhcp_enabled=False)
    assert (updated.name, updated.is_dhcp_enabled) == ("sdk-sub2", False)
    assert conn.network.get_network(network.id).subnet_ids == [subnet.id]
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.network.create_subnet(network_id=network.id, cidr="10.8.1.0/24", ip_version=4)
    conn.network.delete_subnet(subnet, ignore_missing=False)
    conn.network.delete_network(network)

    group = conn.network.create_security_group(name="sdk-sg", description="sdk")
    assert group.stateful is True and len(group.security_group_rules) == 2  # egress v4, v6
    rules = list(conn.network.create_security_group_rules([
        {"security_group_id": group.id, "direction": "ingress", "protocol": "tcp",
         "port_range_min": 80, "port_range_max": 80},
        {"security_group_id": group.id, "direction": "ingress", "protocol": "icmp"}]))
    assert sorted(r.protocol for r in rules) == ["icmp", "tcp"]
    listed = conn.network.security_group_rules(security_group_id=group.id,
                                               direction="ingress")
    assert sorted(r.id for r in listed) == sorted(r.id for r in rules)
    assert "default" in [g.name for g in conn.network.security_groups()]
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", protocol="tcp",
            port_range_min=80, port_range_max=80)
    conn.network.delete_security_group_rule(rules[0], ignore_missing=False)
    conn.network.delete_security_group(group, ignore_missing=False)
    assert conn.network.find_security_group("sdk-sg") is None


def test_cli_subnet_create_list_show_set_delete(cloud: tuple[RunningCloud, Path]) -> None:
    network = _openstack(cloud, "network", "create", "cli-sub-net", "-f", "json")
    made = _openstack(cloud, "subnet", "create", "--network", network["id"], "--subnet-range",
                      "10.9.0.0/24", "cli-subnet", "-f", "json")
    assert made["cidr"] == "10.9.0.0/24" and made["gateway_ip"] == "10.9.0.1"
    listed = _openstack(cloud, "subnet", "list", "-f", "json")
    assert made["id"] in [s["ID"] for s in listed]
    listed = _openstack(cloud, "subnet", "list", "--network", network["id"], "-f", "json")
    assert [s["ID"] for s in listed] == [made["id"]]
    _openstack(cloud, "subnet", "set", "--name", "cli-subnet2", "--dns-nameserver",
               "192.0.2.53", "--no-dhcp", made["id"])
    shown = _openstack(cloud, "subnet", "show", made["id"], "-f", "json")
    assert shown["name"] == "cli-subnet2" and shown["enable_dhcp"] in (False, "False")
    assert "192.0.2.53" in str(shown["dns_nameservers"])
    _openstack(cloud, "subnet", "delete", "cli-subnet2")
    listed = _openstack(cloud, "subnet", "list", "-f", "json")
    assert made["id"] not in [s["ID"] for s in listed]
    _openstack(cloud, "network", "delete", network["id"])


def test_cli_security_group_and_rules(cloud: tuple[RunningCloud, Path]) -> None:
    group = _openstack(cloud, "security", "group", "create", "--description", "cli",
                       "cli-sg", "-f", "json")
    assert group["name"] == "cli-sg"
    made = _openstack(cloud, "security", "group", "rule", "create", "--protocol", "tcp",
                      "--dst-port", "22", group["id"], "-f", "json")
    assert (made["port_range_min"], made["port_range_max"], made["protocol"]) == (
        22, 22, "tcp")
    listed = _openstack(cloud, "security", "group", "rule", "list", group["id"], "-f", "json")
    assert made["id"] in [r["ID"] for r in listed]
    shown = _openstack(cloud, "security", "group", "show", "cli-sg", "-f", "json")
    assert made["id"] in str(shown["rules"])
    _openstack(cloud, "security", "group", "rule", "delete", made["id"])
    listed = _openstack(cloud, "security", "group", "rule", "list", group["id"], "-f", "json")
    assert made["id"] not in [r["ID"] for r in listed]
    _openstack(cloud, "security", "group", "delete", "cli-sg")
    listed = _openstack(cloud, "security", "group", "list", "-f", "json")
    assert group["id"] not in [g["ID"] for g in listed]


def test_sdk_port_crud_and_a_servers_nic(cloud: tuple[RunningCloud, Path]) -> None:
    conn = _connect(cloud[1], "novalet-demo")
    private = conn.network.find_network("private")
    assert private is not None
    port = conn.network.create_port(network_id=private.id, name="sdk-port",
                                    fixed_ips=[{"subnet_id": private.subnet_ids[0]}])
    assert port.status == "DOWN" and port.device_id == ""
    assert port.mac_address.startswith("fa:16:3e:") and len(port.fixed_ips) == 1
    assert [p.id for p in conn.network.ports(name="sdk-port")] == [port.id]
    address = port.fixed_ips[0]["ip_address"]
    assert [p.id for p in conn.network.ports(fixed_ips=[f"ip_address={address}"])] == [port.id]
    updated = conn.network.update_port(port, name="sdk-renamed", is_admin_state_up=False)
    assert (updated.name, updated.is_admin_state_up) == ("sdk-renamed", False)
    conn.network.delete_port(port, ignore_missing=False)
    assert conn.network.find_port(port.id) is None


def test_cli_port_create_list_show_set_delete(cloud: tuple[RunningCloud, Path]) -> None:
    made = _openstack(cloud, "port", "create", "--network", "private", "cli-port", "-f", "json")
    assert made["name"] == "cli-port" and made["status"] == "DOWN"
    listed = _openstack(cloud, "port", "list", "--network", "private", "-f", "json")
    assert made["id"] in [p["ID"] for p in listed]
    _openstack(cloud, "port", "set", "--name", "cli-renamed", made["id"])
    shown = _openstack(cloud, "port", "show", made["id"], "-f", "json")
    assert shown["name"] == "cli-renamed" and shown["mac_address"] == made["mac_address"]
    _openstack(cloud, "port", "delete", made["id"])
    listed = _openstack(cloud, "port", "list", "-f", "json")
    assert made["id"] not in [p["ID"] for p in listed]


def test_cli_floating_ip_create_list_unset_delete(cloud: tuple[RunningCloud, Path]) -> None:
    """`floating ip` commands on the configured pool's external network, "public".
    (`floating ip set --port` resolves the port through /ports: with the ports slice.)"""
    made = _openstack(cloud, "floating", "ip", "create", "--description", "cli", "public",
                      "-f", "json")
    assert made["status"] == "DOWN" and made["port_id"] is None
    assert made["floating_ip_address"].startswith("172.24.4.")
    listed = _openstack(cloud, "floating", "ip", "list", "-f", "json")
    assert made["id"] in [f["ID"] for f in listed]
    _openstack(cloud, "floating", "ip", "unset", "--port", made["id"])
    shown = _openstack(cloud, "floating", "ip", "show", made["floating_ip_address"], "-f", "json")
    assert (shown["id"], shown["description"], shown["port_id"]) == (made["id"], "cli", None)
    _openstack(cloud, "floating", "ip", "delete", made["id"])
    listed = _openstack(cloud, "floating", "ip", "list", "-f", "json")
    assert made["id"] not in [f["ID"] for f in listed]


def test_cli_router_gateway_and_subnet(cloud: tuple[RunningCloud, Path]) -> None:
    """`router create`, `router set --external-gateway`, `router add subnet`, `router
    show`, `router remove subnet`, `router unset --external-gateway`, `router delete`."""
    _openstack(cloud, "network", "create", "cli-rt-net")
    subnet = _openstack(cloud, "subnet", "create", "--network", "cli-rt-net",
                        "--subnet-range", "10.9.0.0/24", "cli-rt-sub", "-f", "json")
    made = _openstack(cloud, "router", "create", "cli-router", "-f", "json")
    assert made["name"] == "cli-router" and made["status"] == "ACTIVE"
    _openstack(cloud, "router", "set", "--external-gateway", "public", "cli-router")
    _openstack(cloud, "router", "add", "subnet", "cli-router", "cli-rt-sub")
    shown = _openstack(cloud, "router", "show", "cli-router", "-f", "json")
    gateway = shown["external_gateway_info"]
    if isinstance(gateway, str):  # older clients print it as text
        gateway = json.loads(gateway)
    assert gateway["enable_snat"] is True
    assert gateway["external_fixed_ips"][0]["ip_address"].startswith("172.24.4.")
    listed = _openstack(cloud, "router", "list", "-f", "json")
    assert made["id"] in [r["ID"] for r in listed]
    _openstack(cloud, "router", "remove", "subnet", "cli-router", subnet["id"])
    _openstack(cloud, "router", "unset", "--external-gateway", "cli-router")
    _openstack(cloud, "router", "delete", "cli-router")
    listed = _openstack(cloud, "router", "list", "-f", "json")
    assert made["id"] not in [r["ID"] for r in listed]
    _openstack(cloud, "subnet", "delete", "cli-rt-sub")
    _openstack(cloud, "network", "delete", "cli-rt-net")
def test_cli_and_sdk_network_quotas_and_ip_availability(cloud: tuple[RunningCloud, Path]
                                                        ) -> None:
    """`openstack quota set --networks/--floating-ips` and `quota show --network` reach
    the network API's quotas; the compute face shows the floating IP limit set there."""
    conn = _connect(cloud[1], "novalet-demo")
    project = conn.current_project_id
    _openstack(cloud, "quota", "set", "--networks", "7", "--floating-ips", "6", project,
               user="novalet")
    shown = _openstack(cloud, "quota", "show", "--network", project, "-f", "json")
    values = shown if isinstance(shown, dict) else {r["Resource"]: r["Limit"] for r in shown}
    assert values["networks"] == 7 and values["floating_ips"] == 6, values
    admin = _connect(cloud[1], "novalet")
    details = admin.network.get_quota(project, details=True)
    assert details.networks["limit"] == 7 and details.floating_ips["limit"] == 6

    def compute_floating_ips() -> int:  # shown by os-quota-sets below 2.36
        resp = admin.compute.get(f"/os-quota-sets/{project}", microversion="2.35")
        return int(resp.json()["quota_set"]["floating_ips"])

    assert compute_floating_ips() == 6
    admin.network.delete_quota(project)
    assert admin.network.get_quota(project).networks == 100
    assert compute_floating_ips() == 10
    made = conn.network.create_network(name="counted")
    try:
        conn.network.create_subnet(network_id=made.id, cidr="10.9.3.0/24", ip_version=4)
        (found,) = admin.network.network_ip_availabilities(network_id=made.id)
        assert (found.total_ips, found.used_ips) == (253, 0)
    finally:
        conn.network.delete_network(made)


def test_cli_network_tags(cloud: tuple[RunningCloud, Path]) -> None:
    made = _openstack(cloud, "network", "create", "--tag", "red", "--tag", "blue",
                      "tagged-net", "-f", "json")
    assert sorted(made["tags"]) == ["blue", "red"]
    _openstack(cloud, "network", "set", "--tag", "green", made["id"])
    _openstack(cloud, "network", "unset", "--tag", "red", made["id"])
    shown = _openstack(cloud, "network", "show", made["id"], "-f", "json")
    assert sorted(shown["tags"]) == ["blue", "green"]
    listed = _openstack(cloud, "network", "list", "--tags", "blue,green", "-f", "json")
    assert [n["ID"] for n in listed] == [made["id"]]
    assert _openstack(cloud, "network", "list", "--tags", "red", "-f", "json") == []
    listed = _openstack(cloud, "network", "list", "--not-tags", "green", "-f", "json")
    assert made["id"] not in [n["ID"] for n in listed]
    _openstack(cloud, "network", "set", "--no-tag", made["id"])
    assert _openstack(cloud, "network", "show", made["id"], "-f", "json")["tags"] == []
    _openstack(cloud, "network", "delete", made["id"])
def test_cli_and_sdk_auto_allocated_topology(cloud: tuple[RunningCloud, Path]) -> None:
    """Get-me-a-network's network API face: the dry run, the topology made once and
    shown after, and its deletion (docs/network-api.md, Get-me-a-network)."""
    topology = ("network", "auto", "allocated", "topology")
    _openstack(cloud, *topology, "create", "--check-resources", "-f", "json")
    made = _openstack(cloud, *topology, "create", "-f", "json")
    conn = _connect(cloud[1], "novalet-demo")
    shown = conn.network.get_auto_allocated_topology()
    assert shown.id == made["id"] and shown.project_id == conn.current_project_id
    network = conn.network.get_network(shown.id)
    assert network.name == "auto_allocated_network" and len(network.subnet_ids) == 1
    assert _openstack(cloud, *topology, "create", "-f", "json")["id"] == made["id"]
    _openstack(cloud, *topology, "delete")
    assert conn.network.find_network(shown.id) is None
