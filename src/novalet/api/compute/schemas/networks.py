"""JSON schemas of os-networks requests (nova-network's, as Nova's v2.1 had them)."""

from __future__ import annotations

from typing import Any

from novalet.api.validation import BOOLEAN

_IPV4 = {"type": "string", "format": "ipv4"}
_IPV6 = {"type": "string", "format": "ipv6"}
_IP = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
_CIDR = {"type": "string", "minLength": 1}
_POSITIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1,
             "minLength": 1}
_PROJECT_ID = {"type": "string", "minLength": 1, "maxLength": 255,
               "pattern": "^[a-zA-Z0-9-]*$"}

CREATE_NETWORK: dict[str, Any] = {
    "type": "object",
    "properties": {"network": {
        "type": "object",
        "properties": {
            "label": {"type": "string", "maxLength": 255},
            "ipam": BOOLEAN, "cidr": _CIDR, "cidr_v6": _CIDR, "project_id": _PROJECT_ID,
            "multi_host": BOOLEAN, "gateway": _IPV4, "gateway_v6": _IPV6,
            "bridge": {"type": "string"}, "bridge_interface": {"type": "string"},
            "dns1": _IPV4, "dns2": _IPV4, "dhcp_server": _IPV4, "fixed_cidr": _CIDR,
            "allowed_start": _IP, "allowed_end": _IP, "enable_dhcp": BOOLEAN,
            "share_address": BOOLEAN, "mtu": _POSITIVE, "vlan": _POSITIVE,
            "vlan_start": _POSITIVE, "vpn_start": {"type": "string"},
        },
        "required": ["label"],
        "oneOf": [{"required": ["cidr"]}, {"required": ["cidr_v6"]}],
        "additionalProperties": False,
    }},
    "required": ["network"],
    "additionalProperties": False,
}

ADD_NETWORK_TO_PROJECT: dict[str, Any] = {
    "type": "object", "properties": {"id": {"type": ["string", "null"]}},
    "required": ["id"], "additionalProperties": False,
}

ASSOCIATE_HOST: dict[str, Any] = {
    "type": "object",
    "properties": {"associate_host": {"type": "string", "minLength": 1, "maxLength": 255}},
    "required": ["associate_host"], "additionalProperties": False,
}

# POST /os-networks/{id}/action: one key names the action.
ACTIONS: dict[str, dict[str, Any]] = {
    "disassociate": {"type": "null"},
    "disassociate_project": {"type": "null"},
    "disassociate_host": {"type": "null"},
    "associate_host": ASSOCIATE_HOST["properties"]["associate_host"],
}
