"""Request paths to documents: both layouts, listings, content types, what is missing."""

from __future__ import annotations

import json

import pytest

from novalet.metadata import content, tree
from novalet.metadata.tree import MetadataNotFound
from tests.unit.metadata.samples import KEY, USER_DATA, UUID, make_md


def text(path: str, **overrides: object) -> str:
    doc = tree.resolve(make_md(**overrides), path)
    assert doc.content_type == tree.TEXT, path
    return doc.body.decode()


def test_root_lists_the_ec2_versions() -> None:
    assert text("/").split("\n") == [*content.EC2_VERSIONS, "latest"]
    assert text("/ec2") == text("/")


def test_openstack_lists_its_versions() -> None:
    assert text("/openstack").split("\n") == [
        "2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
        "2017-02-22", "2018-08-27", "2020-10-14", "latest"]
    assert text("/openstack/") == text("/openstack")


def test_openstack_version_listing() -> None:
    assert text("/openstack/latest/").split("\n") == [
        "meta_data.json", "user_data", "password", "vendor_data.json", "network_data.json",
        "vendor_data2.json"]
    assert "user_data" not in text("/openstack/latest", user_data=None).split("\n")


@pytest.mark.parametrize("name", ["meta_data.json", "network_data.json", "vendor_data.json",
                                  "vendor_data2.json"])
def test_json_documents_are_json(name: str) -> None:
    doc = tree.resolve(make_md(), f"/openstack/2018-08-27/{name}")
    assert doc.content_type == tree.JSON
    assert isinstance(json.loads(doc.body), dict)


def test_meta_data_json_is_the_instances() -> None:
    doc = tree.resolve(make_md(), "/openstack/latest/meta_data.json")
    meta = json.loads(doc.body)
    assert meta["uuid"] == UUID and meta["public_keys"] == {"key-1": KEY}


def test_user_data_is_raw_bytes() -> None:
    doc = tree.resolve(make_md(), "/openstack/latest/user_data")
    assert doc.body == USER_DATA and doc.content_type == tree.TEXT


@pytest.mark.parametrize("path", [
    "/openstack/latest/user_data", "/latest/user-data", "/2009-04-04/user-data"])
def test_no_user_data_is_not_found(path: str) -> None:
    with pytest.raises(MetadataNotFound, match="no user"):
        tree.resolve(make_md(user_data=None), path)


@pytest.mark.parametrize("path", [
    "/openstack/2099-01-01/meta_data.json", "/openstack/latest/nothing",
    "/openstack/2012-08-10/network_data.json", "/openstack/2012-08-10/password",
    "/openstack/latest/meta_data.json/uuid", "/2099-01-01/meta-data/",
    "/latest/meta-data/nothing", "/latest/meta-data/hostname/deeper", "/latest/nothing",
    "/latest/meta-data/../user-data", "/latest/dynamic/other"])
def test_paths_that_name_nothing(path: str) -> None:
    with pytest.raises(MetadataNotFound):
        tree.resolve(make_md(), path)


def test_password_is_served_as_stored() -> None:
    assert text("/openstack/latest/password") == ""
    assert text("/openstack/2013-04-04/password", password="encrypted==") == "encrypted=="


def test_password_paths() -> None:
    assert tree.password_version(tree.split("/openstack/latest/password")) == "latest"
    assert tree.password_version(tree.split("/openstack/2013-04-04/password/")) == "2013-04-04"
    assert tree.password_version(tree.split("/openstack/2012-08-10/password")) is None
    assert tree.password_version(tree.split("/latest/password")) is None


def test_ec2_version_listing_ends_directories_with_a_slash() -> None:
    assert text("/latest").split("\n") == ["dynamic/", "meta-data/", "user-data"]
    assert text("/2009-04-04/", user_data=None).split("\n") == ["dynamic/", "meta-data/"]


def test_ec2_meta_data_listing() -> None:
    assert text("/latest/meta-data/").split("\n") == [
        "ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping/", "hostname",
        "instance-action", "instance-id", "instance-type", "local-hostname", "local-ipv4",
        "placement/", "public-hostname", "public-ipv4", "public-keys/", "reservation-id",
        "security-groups"]
    assert text("/latest/meta-data") == text("/ec2/latest/meta-data/")
    assert "public-keys/" not in text("/latest/meta-data/", public_keys={}).split("\n")


def test_ec2_older_versions_list_less() -> None:
    listing = text("/1.0/meta-data/").split("\n")
    assert "instance-id" in listing and "placement/" not in listing


def test_ec2_files() -> None:
    assert text("/latest/meta-data/instance-id") == "i-6a7b8c9d"
    assert text("/latest/meta-data/ami-launch-index") == "0"
    assert text("/latest/meta-data/local-ipv4") == "10.0.0.5"
    assert text("/latest/meta-data/public-ipv4") == ""
    assert text("/latest/meta-data/security-groups") == "default\nweb"
    assert text("/latest/meta-data/placement/") == "availability-zone"
    assert text("/latest/meta-data/placement/availability-zone") == "zone-a"
    assert text("/latest/meta-data/block-device-mapping/") == "ami\nroot"
    assert text("/latest/meta-data/block-device-mapping/root") == "/dev/vda"
    assert text("/2009-04-04/user-data") == USER_DATA.decode()


def test_ec2_public_keys_as_cloud_init_crawls_them() -> None:
    keys = {"a": "ssh-rsa AAA a", "b": "ssh-ed25519 BBB b"}
    assert text("/latest/meta-data/public-keys/", public_keys=keys) == "0=a\n1=b"
    assert text("/latest/meta-data/public-keys/1/", public_keys=keys) == "openssh-key"
    assert text("/latest/meta-data/public-keys/1/openssh-key",
                public_keys=keys) == "ssh-ed25519 BBB b"


def test_instance_identity_document() -> None:
    assert text("/latest/dynamic/") == "instance-identity/"
    assert text("/latest/dynamic/instance-identity/") == "document"
    document = json.loads(text("/latest/dynamic/instance-identity/document"))
    assert document["instanceId"] == "i-6a7b8c9d" and document["privateIp"] == "10.0.0.5"


def test_the_random_seed_can_be_fixed() -> None:
    seed = b"\x01" * 512
    first = tree.resolve(make_md(), "/openstack/latest/meta_data.json", random_seed=seed)
    again = tree.resolve(make_md(), "/openstack/latest/meta_data.json", random_seed=seed)
    assert first == again
