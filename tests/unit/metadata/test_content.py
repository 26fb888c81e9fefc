"""The documents: the shapes cloud-init's OpenStack, ConfigDrive and EC2 datasources read."""

from __future__ import annotations

import base64
import json

import pytest

from novalet.metadata import content, tree
from novalet.metadata.content import InstanceMetadata
from tests.unit.metadata.samples import KEY, USER_DATA, UUID, make_md, make_vif

SEED = bytes(range(256)) * 2

# What cloud-init's OpenStack helper treats as a physical NIC, and the network
# types its network_data.json converter understands.
CLOUD_INIT_PHYSICAL_LINK_TYPES = {None, "bgpovs", "bridge", "cascading", "dvs", "ethernet",
                                  "hw_veb", "hyperv", "ovs", "phy", "tap", "vhostuser", "vif"}
CLOUD_INIT_NETWORK_TYPES = {"ipv4", "ipv4_dhcp", "ipv6", "ipv6_dhcp", "ipv6_slaac"}


def test_meta_data_latest_has_every_field() -> None:
    meta = content.openstack_meta_data(make_md(), random_seed=SEED)
    assert meta == {
        "uuid": UUID, "name": "web 1", "hostname": "web-1", "availability_zone": "zone-a",
        "project_id": "project-1", "launch_index": 0, "meta": {"role": "web"},
        "public_keys": {"key-1": KEY},
        "keys": [{"name": "key-1", "type": "ssh", "data": KEY}],
        "random_seed": base64.b64encode(SEED).decode(),
        "devices": [], "dedicated_cpus": [],
    }


def test_random_seed_is_512_fresh_bytes_by_default() -> None:
    first = content.openstack_meta_data(make_md())["random_seed"]
    second = content.openstack_meta_data(make_md())["random_seed"]
    assert len(base64.b64decode(first)) == 512 and first != second


@pytest.mark.parametrize(("version", "present", "absent"), [
    ("2012-08-10", set(), {"random_seed", "keys", "project_id", "devices", "dedicated_cpus"}),
    ("2013-04-04", {"random_seed"}, {"keys", "project_id", "devices"}),
    ("2013-10-17", {"random_seed"}, {"keys", "project_id", "devices"}),
    ("2015-10-15", {"random_seed", "keys", "project_id"}, {"devices"}),
    ("2016-06-30", {"keys", "project_id", "devices"}, {"dedicated_cpus"}),
    ("2018-08-27", {"devices"}, {"dedicated_cpus"}),
    ("2020-10-14", {"devices", "dedicated_cpus"}, set()),
    ("latest", {"random_seed", "keys", "project_id", "devices", "dedicated_cpus"}, set()),
])
def test_meta_data_fields_follow_the_version(version: str, present: set[str],
                                             absent: set[str]) -> None:
    meta = content.openstack_meta_data(make_md(), version)
    base = {"uuid", "name", "hostname", "availability_zone", "launch_index", "meta",
            "public_keys"}
    assert base | present <= meta.keys()
    assert not absent & meta.keys()


def test_the_admin_password_goes_only_where_asked() -> None:
    md = make_md(admin_pass="s3cret")
    assert "admin_pass" not in content.openstack_meta_data(md)
    assert content.openstack_meta_data(md, include_admin_pass=True)["admin_pass"] == "s3cret"


def test_no_keys_gives_empty_key_fields() -> None:
    meta = content.openstack_meta_data(make_md(public_keys={}))
    assert meta["public_keys"] == {} and meta["keys"] == []


def test_listing_of_a_version_follows_what_the_instance_has() -> None:
    assert content.openstack_listing(make_md(), "latest") == [
        "meta_data.json", "user_data", "password", "vendor_data.json", "network_data.json",
        "vendor_data2.json"]
    assert content.openstack_listing(make_md(user_data=None), "2012-08-10") == ["meta_data.json"]


def test_network_data_of_a_dhcp_vif() -> None:
    vif = make_vif()
    assert content.network_data(make_md(vifs=[vif])) == {
        "links": [{"id": vif.tap, "vif_id": vif.id, "type": "phy",
                   "ethernet_mac_address": "fa:16:3e:11:22:33", "mtu": 1500}],
        "networks": [{"id": "network0", "link": vif.tap, "type": "ipv4_dhcp",
                      "network_id": "net-uuid-1"}],
        "services": [{"type": "dns", "address": "10.0.0.1"},
                     {"type": "dns", "address": "8.8.8.8"}],
    }


def test_network_data_of_a_static_vif_has_address_netmask_and_default_route() -> None:
    vif = make_vif(dhcp=False, fixed_ip="192.168.7.20", cidr="192.168.7.0/26",
                   gateway="192.168.7.1", dns=["192.168.7.1"], mtu=None)
    data = content.network_data(make_md(vifs=[vif]))
    assert data["links"][0]["mtu"] is None
    assert data["networks"] == [{
        "id": "network0", "link": vif.tap, "type": "ipv4", "ip_address": "192.168.7.20",
        "netmask": "255.255.255.192", "network_id": "net-uuid-1",
        "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.7.1"}],
        "services": [{"type": "dns", "address": "192.168.7.1"}]}]


def test_network_data_of_a_static_vif_without_gateway_has_no_route() -> None:
    vif = make_vif(dhcp=False, gateway="")
    assert content.network_data(make_md(vifs=[vif]))["networks"][0]["routes"] == []


def test_network_data_of_a_static_ipv6_vif() -> None:
    vif = make_vif(dhcp=False, fixed_ip="fd00::5", cidr="fd00::/64", gateway="fd00::1", dns=[])
    network = content.network_data(make_md(vifs=[vif]))["networks"][0]
    assert network["type"] == "ipv6" and network["netmask"] == "ffff:ffff:ffff:ffff::"
    assert network["routes"] == [{"network": "::", "netmask": "::", "gateway": "fd00::1"}]


def test_network_data_of_several_vifs_is_consistent_for_cloud_init() -> None:
    vifs = [make_vif(),
            make_vif(id="9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4", address="fa:16:3e:44:55:66",
                     network_id="net-uuid-2", fixed_ip="172.16.0.9", cidr="172.16.0.0/16",
                     gateway="172.16.0.1", dns=["8.8.8.8"], dhcp=False)]
    data = content.network_data(make_md(vifs=vifs))
    assert set(data) == {"links", "networks", "services"}
    link_ids = [link["id"] for link in data["links"]]
    assert len(set(link_ids)) == 2 and all(len(name) <= 15 for name in link_ids)
    for link in data["links"]:
        assert set(link) == {"id", "vif_id", "type", "ethernet_mac_address", "mtu"}
        assert link["type"] in CLOUD_INIT_PHYSICAL_LINK_TYPES
    assert [net["id"] for net in data["networks"]] == ["network0", "network1"]
    for net in data["networks"]:
        assert net["link"] in link_ids and net["type"] in CLOUD_INIT_NETWORK_TYPES
        if net["type"] == "ipv4":
            assert {"ip_address", "netmask", "routes"} <= net.keys()
    # Each DNS server once, in the order the vifs name them.
    assert data["services"] == [{"type": "dns", "address": "10.0.0.1"},
                                {"type": "dns", "address": "8.8.8.8"}]


def test_network_data_without_vifs_is_empty() -> None:
    assert content.network_data(make_md(vifs=[])) == {"links": [], "networks": [], "services": []}


def test_vendor_data() -> None:
    assert content.vendor_data(make_md()) == {}
    assert content.vendor_data(make_md(vendor_data={"cloud": "novalet"})) == {"cloud": "novalet"}
    assert content.vendor_data2(make_md()) == {}


def test_ec2_ids() -> None:
    assert content.ec2_instance_id(make_md()) == "i-6a7b8c9d"
    assert content.ec2_instance_id(make_md(ec2_id=42)) == "i-0000002a"
    assert content.ec2_ami_id(make_md()) == "ami-1f2e3d4c"
    assert content.ec2_ami_id(make_md(image_id="ami-0000beef")) == "ami-0000beef"
    assert content.ec2_ami_id(make_md(image_id="")) == "ami-00000000"
    assert content.ec2_ami_id(make_md(image_id="not-a-uuid")).startswith("ami-")


def test_ec2_meta_data_latest() -> None:
    md = make_md(vifs=[make_vif(floating_ips=["203.0.113.7"])])
    assert content.ec2_meta_data(md) == {
        "ami-id": "ami-1f2e3d4c", "ami-launch-index": 0, "ami-manifest-path": "(unknown)",
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
        "hostname": "web-1", "instance-action": "none", "instance-id": "i-6a7b8c9d",
        "instance-type": "m1.tiny", "local-hostname": "web-1", "local-ipv4": "10.0.0.5",
        "placement": {"availability-zone": "zone-a"}, "public-hostname": "web-1",
        "public-ipv4": "203.0.113.7", "public-keys": {"0": {"openssh-key": KEY}},
        "reservation-id": "r-0000abcd", "security-groups": ["default", "web"],
    }


def test_ec2_meta_data_follows_the_version() -> None:
    oldest = content.ec2_meta_data(make_md(), "1.0")
    assert "instance-id" in oldest and "local-hostname" not in oldest
    assert "placement" not in oldest and "instance-action" not in oldest
    assert "instance-type" in content.ec2_meta_data(make_md(), "2007-08-29")
    assert "block-device-mapping" not in content.ec2_meta_data(make_md(), "2007-10-10")
    assert "instance-action" in content.ec2_meta_data(make_md(), "2009-04-04")


def test_explicit_addresses_win_over_the_vifs() -> None:
    md = make_md(local_ipv4="10.9.9.9", public_ipv4="198.51.100.1")
    tree_ = content.ec2_meta_data(md)
    assert tree_["local-ipv4"] == "10.9.9.9" and tree_["public-ipv4"] == "198.51.100.1"
    bare = content.ec2_meta_data(make_md(vifs=[]))
    assert bare["local-ipv4"] == "" and bare["public-ipv4"] == ""


def test_public_keys_listing_names_each_key_by_index() -> None:
    md = make_md(public_keys={"a": "ssh-rsa AAA a", "b": "ssh-ed25519 BBB b"})
    assert content.ec2_public_keys_listing(md) == ["0=a", "1=b"]
    assert content.ec2_meta_data(md)["public-keys"] == {
        "0": {"openssh-key": "ssh-rsa AAA a"}, "1": {"openssh-key": "ssh-ed25519 BBB b"}}


def test_instance_identity_document() -> None:
    assert content.instance_identity(make_md()) == {
        "accountId": "project-1", "availabilityZone": "zone-a", "imageId": "ami-1f2e3d4c",
        "instanceId": "i-6a7b8c9d", "instanceType": "m1.tiny",
        "pendingTime": "2026-03-04T05:06:07Z", "privateIp": "10.0.0.5", "version": "2017-09-30"}


def test_config_drive_files() -> None:
    files = content.config_drive_files(make_md(), random_seed=SEED)
    for version in content.CONFIG_DRIVE_OPENSTACK_VERSIONS:
        assert f"openstack/{version}/meta_data.json" in files
        assert files[f"openstack/{version}/user_data"] == USER_DATA
        assert f"openstack/{version}/password" not in files
    assert "openstack/2012-08-10/vendor_data.json" not in files
    assert "openstack/2013-10-17/vendor_data.json" in files
    assert "openstack/2013-10-17/network_data.json" not in files
    assert "openstack/2015-10-15/network_data.json" in files
    assert "openstack/2016-06-30/vendor_data2.json" not in files
    assert "openstack/2016-10-06/vendor_data2.json" in files
    assert sorted(name for name in files if name.startswith("ec2/")) == [
        "ec2/2009-04-04/meta-data.json", "ec2/2009-04-04/user-data",
        "ec2/latest/meta-data.json", "ec2/latest/user-data"]
    assert json.loads(files["ec2/latest/meta-data.json"])["instance-id"] == "i-6a7b8c9d"


def test_config_drive_and_service_serve_the_same_documents() -> None:
    md = make_md(vendor_data={"x": 1})
    files = content.config_drive_files(md, random_seed=SEED)
    for version in content.CONFIG_DRIVE_OPENSTACK_VERSIONS:
        for name in content.openstack_listing(md, version):
            if name == "password":
                continue
            served = tree.resolve(md, f"/openstack/{version}/{name}", random_seed=SEED)
            assert files[f"openstack/{version}/{name}"] == served.body, (version, name)


def test_the_drive_has_the_admin_password_and_the_service_not() -> None:
    md = make_md(admin_pass="s3cret")
    files = content.config_drive_files(md)
    assert json.loads(files["openstack/latest/meta_data.json"])["admin_pass"] == "s3cret"
    assert b"s3cret" not in tree.resolve(md, "/openstack/latest/meta_data.json").body


def test_to_dict_round_trips_through_json() -> None:
    md = make_md(password="enc", admin_pass="p", ec2_id=7, dedicated_cpus=[1, 2])
    again = InstanceMetadata.from_dict(json.loads(json.dumps(md.to_dict())))
    assert again == md
    assert InstanceMetadata.from_dict(make_md(user_data=None, launched_at=None).to_dict()) \
        == make_md(user_data=None, launched_at=None)
