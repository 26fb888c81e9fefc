"""The config drive: an ISO9660 image labelled config-2 with the metadata cloud-init reads.

The layout is Nova's: openstack/<version>/{meta_data.json, user_data,
network_data.json, vendor_data.json, vendor_data2.json} for each metadata
version plus `latest`, and ec2/<version>/{meta-data.json, user-data}. The
documents come from novalet.metadata.content, so the drive and the metadata
service serve the same ones. Built with pycdlib (no genisoimage on the host),
with Rock Ridge and Joliet names.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pycdlib

from novalet.metadata import content
from novalet.metadata.content import InstanceMetadata
from novalet.network.model import Vif
from novalet.virt.driver import GuestSpec, VirtDriverError

LABEL = "config-2"

OPENSTACK_VERSIONS = content.CONFIG_DRIVE_OPENSTACK_VERSIONS
EC2_VERSIONS = content.CONFIG_DRIVE_EC2_VERSIONS


def decoded_user_data(spec: GuestSpec) -> bytes | None:
    if spec.user_data is None:
        return None
    try:
        return base64.b64decode("".join(spec.user_data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise VirtDriverError(reason=f"user_data of {spec.uuid} is not base64") from None


def instance_metadata(spec: GuestSpec,
                      vendor_data: Mapping[str, Any] | None = None) -> InstanceMetadata:
    """The metadata record of the guest `spec` describes.

    Fields GuestSpec may not carry yet (network_info, flavor_name, launch_index,
    reservation_id, admin_pass, security_groups, launched_at) are read when present.
    """
    keys = {spec.key_name or "default": spec.key_data} if spec.key_data else {}
    vifs = [vif if isinstance(vif, Vif) else Vif.from_dict(vif)
            for vif in getattr(spec, "network_info", None) or []]
    return InstanceMetadata(
        uuid=spec.uuid, name=spec.name, hostname=spec.hostname,
        project_id=spec.project_id, availability_zone=spec.availability_zone or "nova",
        launch_index=getattr(spec, "launch_index", 0) or 0,
        reservation_id=getattr(spec, "reservation_id", "") or "",
        public_keys=keys, user_data=decoded_user_data(spec), meta=dict(spec.metadata),
        vifs=vifs, image_id=spec.image_ref,
        instance_type=getattr(spec, "flavor_name", "") or "",
        launched_at=getattr(spec, "launched_at", None),
        vendor_data=dict(vendor_data or {}),
        admin_pass=getattr(spec, "admin_pass", None),
        security_groups=list(getattr(spec, "security_groups", None) or []),
    )


def files_for(spec: GuestSpec, vendor_data: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Every file of the config drive, by path, before it becomes an ISO."""
    return content.config_drive_files(instance_metadata(spec, vendor_data))


def build(spec: GuestSpec, dest: Path, vendor_data: Mapping[str, Any] | None = None) -> None:
    """Write the config drive ISO of spec to dest (blocking: run it in a thread).
    `vendor_data` is the operator's ([metadata] vendordata_json), as the service serves it."""
    write_iso(files_for(spec, vendor_data), dest)


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
