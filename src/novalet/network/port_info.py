"""A port as the network API shows it: a virtual_interfaces row (network/ports.py)
or a router's interface or gateway (network/router_ports.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PortInfo:
    """A port as the network API shows it (binding:* filtered by the handler)."""

    id: str
    name: str
    description: str
    network_id: str
    project_id: str
    mac_address: str
    admin_state_up: bool
    status: str
    fixed_ips: list[dict[str, str]]
    device_id: str
    device_owner: str
    security_groups: list[str]
    port_security_enabled: bool
    allowed_address_pairs: list[dict[str, str]]
    binding_host_id: str
    binding_vif_type: str
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    target: dict[str, Any] = field(default_factory=dict, compare=False)
