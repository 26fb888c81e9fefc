"""The config drive: an ISO9660 image labelled config-2 with the metadata cloud-init reads.

The layout is Nova's: openstack/<version>/{meta_data.json, user_data,
network_data.json, vendor_data.json, vendor_data2.json} for each metadata
version plus `latest`, and ec2/<version>/{meta-data.json, user-data}. Built
with pycdlib (no genisoimage on the host), with Rock Ridge and Joliet names.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from pathlib import Path
from typing import Any

import pycdlib

from novalet.virt.driver import GuestSpec, VirtDriverError

LABEL = "config-2"

OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "latest")
EC2_VERSIONS = ("2009-04-04", "latest")

_EMPTY_NETWORK: dict[str, list[Any]] = {"links": [], "networks": [], "services": []}


def _at_least(version: str, first: str) -> bool:
    return version == "latest" or version >= first


def openstack_meta_data(spec: GuestSpec, version: str = "latest",
                        random_seed: bytes | None = None) -> dict[str, Any]:
    keys = {spec.key_name or "default": spec.key_data} if spec.key_data else {}
    meta: dict[str, Any] = {
        "uuid": spec.uuid, "name": spec.name, "hostname": spec.hostname,
        "availability_zone": spec.availability_zone or "nova",
        "launch_index": 0, "meta": dict(spec.metadata), "public_keys": keys,
        "project_id": spec.project_id,
    }
    if _at_least(version, "2013-04-04"):
        seed = random_seed if random_seed is not None else os.urandom(512)
        meta["random_seed"] = base64.b64encode(seed).decode()
    if _at_least(version, "2015-10-15"):
        meta["keys"] = [{"name": name, "type": "ssh", "data": data}
                        for name, data in keys.items()]
    if _at_least(version, "2016-06-30"):
        meta["devices"] = []
    return meta


def ec2_meta_data(spec: GuestSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "ami-id": f"ami-{spec.image_ref.replace('-', '')[:8]}",
        "ami-launch-index": 0,
        "instance-id": f"i-{spec.uuid.replace('-', '')[:8]}",
        "hostname": spec.hostname, "local-hostname": spec.hostname,
        "placement": {"availability-zone": spec.availability_zone or "nova"},
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
    }
    if spec.key_data:
        meta["public-keys"] = {"0": {"openssh-key": spec.key_data}}
    return meta


def decoded_user_data(spec: GuestSpec) -> bytes | None:
    if spec.user_data is None:
        return None
    try:
        return base64.b64decode("".join(spec.user_data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise VirtDriverError(reason=f"user_data of {spec.uuid} is not base64") from None


def files_for(spec: GuestSpec) -> dict[str, bytes]:
    """Every file of the config drive, by path, before it becomes an ISO."""
    files: dict[str, bytes] = {}
    user_data = decoded_user_data(spec)
    seed = os.urandom(512)
    for version in OPENSTACK_VERSIONS:
        base = f"openstack/{version}"
        files[f"{base}/meta_data.json"] = _json(openstack_meta_data(spec, version, seed))
        if user_data is not None:
            files[f"{base}/user_data"] = user_data
        if _at_least(version, "2013-10-17"):
            files[f"{base}/vendor_data.json"] = b"{}"
        if _at_least(version, "2015-10-15"):
            files[f"{base}/network_data.json"] = _json(_EMPTY_NETWORK)
        if _at_least(version, "2016-10-06"):
            files[f"{base}/vendor_data2.json"] = b"{}"
    for version in EC2_VERSIONS:
        files[f"ec2/{version}/meta-data.json"] = _json(ec2_meta_data(spec))
        if user_data is not None:
            files[f"ec2/{version}/user-data"] = user_data
    return files


def build(spec: GuestSpec, dest: Path) -> None:
    """Write the config drive ISO of spec to dest (blocking: run it in a thread)."""
    write_iso(files_for(spec), dest)


def write_iso(files: dict[str, bytes], dest: Path) -> None:
    iso = pycdlib.PyCdlib()
    # Interchange level 4 (ISO9660:1999) keeps lower-case and long names as they are.
    iso.new(interchange_level=4, joliet=3, rock_ridge="1.09", vol_ident=LABEL,
            pub_ident_str="Novalet", app_ident_str="novalet config drive")
    made: set[str] = set()
    try:
        for path in sorted(files):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/" + "/".join(parts[:depth])
                if directory not in made:
                    iso.add_directory(directory, rr_name=parts[depth - 1],
                                      joliet_path=directory)
                    made.add(directory)
            data = files[path]
            iso.add_fp(io.BytesIO(data), len(data), "/" + path, rr_name=parts[-1],
                       joliet_path="/" + path)
        iso.write(str(dest))
    finally:
        iso.close()


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True).encode()
