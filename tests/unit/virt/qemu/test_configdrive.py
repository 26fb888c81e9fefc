"""The config drive: its files and the ISO9660 image labelled config-2."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pycdlib
import pytest

from novalet.metadata import tree
from novalet.virt.driver import GuestSpec, VirtDriverError
from novalet.virt.qemu import configdrive
from tests.unit.virt.qemu.conftest import make_spec

USER_DATA = b"#!/bin/sh\necho hello from user_data\n"


def spec_with_user_data() -> object:
    return make_spec(None, uuid="6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d", name="web 1",
                     hostname="web-1", user_data=base64.b64encode(USER_DATA).decode(),
                     availability_zone="zone-a")


def test_meta_data_has_what_cloud_init_reads() -> None:
    files = configdrive.files_for(spec_with_user_data())  # type: ignore[arg-type]
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert meta["uuid"] == "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
    assert meta["name"] == "web 1" and meta["hostname"] == "web-1"
    assert meta["availability_zone"] == "zone-a" and meta["project_id"] == "project-1"
    assert meta["launch_index"] == 0 and meta["meta"] == {"role": "test"}
    assert meta["public_keys"] == {"key-1": "ssh-ed25519 AAAA test"}
    assert meta["keys"] == [{"name": "key-1", "type": "ssh", "data": "ssh-ed25519 AAAA test"}]
    assert len(base64.b64decode(meta["random_seed"])) == 512


def test_every_version_and_the_ec2_tree_are_there() -> None:
    files = configdrive.files_for(spec_with_user_data())  # type: ignore[arg-type]
    for version in configdrive.OPENSTACK_VERSIONS:
        assert f"openstack/{version}/meta_data.json" in files
        assert files[f"openstack/{version}/user_data"] == USER_DATA
    assert "random_seed" not in json.loads(files["openstack/2012-08-10/meta_data.json"])
    assert json.loads(files["openstack/latest/network_data.json"]) == {
        "links": [], "networks": [], "services": []}
    assert "openstack/2012-08-10/network_data.json" not in files
    ec2 = json.loads(files["ec2/latest/meta-data.json"])
    assert ec2["instance-id"] == "i-6a7b8c9d" and ec2["hostname"] == "web-1"
    assert ec2["public-keys"] == {"0": {"openssh-key": "ssh-ed25519 AAAA test"}}
    assert files["ec2/latest/user-data"] == USER_DATA


def test_no_user_data_and_no_key() -> None:
    files = configdrive.files_for(make_spec(None, key_data=None, key_name=None))
    assert not any(name.endswith("user_data") for name in files)
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert meta["public_keys"] == {} and meta["keys"] == []


def test_user_data_that_is_not_base64_is_an_error() -> None:
    with pytest.raises(VirtDriverError, match="not base64"):
        configdrive.files_for(make_spec(None, user_data="%%%"))


def test_the_iso_is_labelled_config_2_with_rock_ridge_and_joliet_names(tmp_path: Path) -> None:
    dest = tmp_path / "disk.config"
    configdrive.build(spec_with_user_data(), dest)  # type: ignore[arg-type]
    iso = pycdlib.PyCdlib()
    iso.open(str(dest))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "config-2"
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path="/openstack/latest/user_data")
        assert out.getvalue() == USER_DATA
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, joliet_path="/openstack/latest/meta_data.json")
        assert json.loads(out.getvalue())["hostname"] == "web-1"
        names = [child.rock_ridge.name().decode()
                 for child in iso.list_children(rr_path="/openstack")
                 if child.rock_ridge is not None and not (child.is_dot() or child.is_dotdot())]
        assert sorted(names) == sorted(configdrive.OPENSTACK_VERSIONS)
    finally:
        iso.close()



@dataclasses.dataclass(frozen=True)
class SpecWithExtras(GuestSpec):
    """A GuestSpec with fields the config drive reads once GuestSpec has them."""

    admin_pass: str | None = None


def with_extras(spec: GuestSpec, **extras: Any) -> GuestSpec:
    values = {f.name: getattr(spec, f.name) for f in dataclasses.fields(GuestSpec)}
    return SpecWithExtras(**{**values, **extras})


def test_network_info_becomes_network_data() -> None:
    vif = {"id": "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "address": "fa:16:3e:11:22:33",
           "network_id": "net-1", "network_label": "private", "bridge": "br100",
           "fixed_ip": "10.0.0.5", "cidr": "10.0.0.0/24", "gateway": "10.0.0.1",
           "dns": ["10.0.0.1"], "dhcp": False}
    files = configdrive.files_for(with_extras(make_spec(None), network_info=[vif]))
    data = json.loads(files["openstack/latest/network_data.json"])
    assert data["links"][0]["ethernet_mac_address"] == "fa:16:3e:11:22:33"
    assert data["networks"][0]["ip_address"] == "10.0.0.5"
    assert json.loads(files["ec2/latest/meta-data.json"])["local-ipv4"] == "10.0.0.5"


def test_vendor_data_and_admin_pass_reach_the_drive() -> None:
    spec = with_extras(make_spec(None), admin_pass="s3cret")
    files = configdrive.files_for(spec, vendor_data={"cloud": "novalet"})
    assert json.loads(files["openstack/latest/vendor_data.json"]) == {"cloud": "novalet"}
    assert json.loads(files["openstack/latest/meta_data.json"])["admin_pass"] == "s3cret"


def test_the_drive_holds_what_the_metadata_service_serves() -> None:
    spec = spec_with_user_data()
    md = configdrive.instance_metadata(spec)  # type: ignore[arg-type]
    files = configdrive.files_for(spec)  # type: ignore[arg-type]
    for path, data in files.items():
        if not path.startswith("openstack/"):
            continue
        served = tree.resolve(md, "/" + path).body
        if path.endswith("meta_data.json"):   # random_seed is fresh on every build
            data, served = (json.loads(data), json.loads(served))
            data.pop("random_seed", None)
            served.pop("random_seed", None)
        assert data == served, path
