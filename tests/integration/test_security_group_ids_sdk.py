"""One id per security group on both faces, through openstacksdk against a running
`novalet up` with the network API (pointed at by `network_endpoint_override`, as in
test_network_api_clients.py): Ansible's openstack.cloud.server reads a server's
groups through the compute API (fetch_server_security_groups) and fetches them
from the network API by the ids it got; the openstack CLI boots with a group's
uuid as its name."""

from __future__ import annotations

from collections.abc import Iterator

import openstack
import pytest
import yaml

from tests.integration.conftest import RunningCloud, start_cloud, stop_cloud

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openstack.connection.Connection]:
    """The demo user's connection to a fake-driver cloud, with an image to boot."""
    root = tmp_path_factory.mktemp("sgids")
    running: RunningCloud = start_cloud(root / "state")
    try:
        config = yaml.safe_load(running.clouds_yaml.read_text())
        for entry in config["clouds"].values():
            entry["network_endpoint_override"] = f"http://127.0.0.1:{running.port}/network"
        clouds_yaml = root / "clouds.yaml"
        clouds_yaml.write_text(yaml.safe_dump(config))
        disk = root / "disk.qcow2"
        disk.write_bytes(b"\0" * 65536)
        running.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                          "--public", "sgids-image", cloud="novalet")
        loaded = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
        yield openstack.connection.Connection(config=loaded.get_one(cloud="novalet-demo"))
    finally:
        assert stop_cloud(running) == 0, running.tail()


def test_a_servers_groups_are_found_by_the_compute_apis_ids(
        conn: openstack.connection.Connection) -> None:
    group = conn.network.create_security_group(name="sdk-ids", description="both faces")
    rule = conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="tcp",
        port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0")
    image = conn.image.find_image("sgids-image", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    # the openstack CLI's way with the network API in the catalog: the uuid as name
    server = conn.compute.create_server(name="sgids", image_id=image.id, flavor_id=flavor.id,
                                        networks="none", security_groups=[{"name": group.id}])
    server = conn.compute.wait_for_server(server, wait=120)
    try:
        fetched = conn.compute.fetch_server_security_groups(server)
        ids = [g["id"] for g in fetched.security_groups]
        assert ids == [group.id]
        (shown,) = fetched.security_groups
        assert [(r["id"], r["parent_group_id"]) for r in shown["rules"]] == [
            (rule.id, group.id)]
        # what failed before: the network API knows the compute API's ids
        assert [conn.network.get_security_group(i).name for i in ids] == ["sdk-ids"]
        assert conn.network.get_security_group_rule(shown["rules"][0]["id"]).port_range_min == 22
        proxied = conn.compute.get("/os-security-groups", microversion="2.1").json()
        assert {g["id"] for g in proxied["security_groups"]} == {
            g.id for g in conn.network.security_groups(project_id=group.project_id)}
    finally:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=120)
    conn.network.delete_security_group(group, ignore_missing=False)
    assert conn.network.find_security_group(group.id) is None
