"""Instances and vifs for the metadata tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from novalet.metadata.content import InstanceMetadata
from novalet.network.model import Vif

UUID = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
OTHER_UUID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG test@example"
USER_DATA = b"#!/bin/sh\necho hello from user_data\n"


def make_vif(**overrides: Any) -> Vif:
    values: dict[str, Any] = dict(
        id="3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", address="fa:16:3e:11:22:33",
        network_id="net-uuid-1", network_label="private", bridge="br100",
        fixed_ip="10.0.0.5", cidr="10.0.0.0/24", gateway="10.0.0.1",
        dns=["10.0.0.1", "8.8.8.8"], dhcp=True, mtu=1500)
    values.update(overrides)
    return Vif(**values)


def make_md(**overrides: Any) -> InstanceMetadata:
    values: dict[str, Any] = dict(
        uuid=UUID, name="web 1", hostname="web-1", project_id="project-1",
        availability_zone="zone-a", launch_index=0, reservation_id="r-0000abcd",
        public_keys={"key-1": KEY}, user_data=USER_DATA, meta={"role": "web"},
        vifs=[make_vif()], image_id="1f2e3d4c-aaaa-bbbb-cccc-123456789abc",
        instance_type="m1.tiny", launched_at=dt.datetime(2026, 3, 4, 5, 6, 7),
        security_groups=["default", "web"])
    values.update(overrides)
    return InstanceMetadata(**values)
