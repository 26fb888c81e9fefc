"""GET /v2.0/extensions[/{alias}]: the Neutron extensions really served, no more.

Each one lists the network attributes it adds (tests check every listed alias's
attributes appear on networks); the list grows as slices land (docs/network-api.md)."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.handler import ApiRequest

_UPDATED = "2026-12-07T00:00:00-00:00"

# alias -> (name, description, the network attributes it adds)
EXTENSIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "standard-attr-description": (
        "standard-attr-description", "Extension to add descriptions to standard attributes",
        ("description",)),
    "standard-attr-timestamp": (
        "Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
        "resources that have Neutron standard attributes.", ("created_at", "updated_at")),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource.", ("mtu",)),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a "
                         "network resource.", ("mtu",)),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical "
                 "networks (admin only).", ("provider:network_type",
                                            "provider:physical_network",
                                            "provider:segmentation_id")),
    "external-net": ("Neutron external network", "Adds external network attribute to "
                     "network resource.", ("router:external",)),
    "port-security": ("Port Security", "Provides port security (the network's default for "
                      "its ports).", ("port_security_enabled",)),
    "security-group": ("security-group", "The security groups extension (groups and their "
                       "ingress and egress rules).", ()),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id "
                   "field is enabled.", ("project_id",)),
    "pagination": ("Pagination support", "Extension that indicates that pagination is "
                   "enabled.", ()),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled.", ()),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter "
                          "parameters.", ()),
    # subnets of external networks are visible to every project; subnets show
    # router:external (api/network/subnets.py)
    "subnet-external-network": ("Subnet External Network", "Informs if the subnet is "
                                "external or not.", ()),
    # port extensions: no network attributes (api/network/ports.py EXTENSION_ATTRIBUTES
    # lists what each adds to ports)
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external "
                "application", ()),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs",
                              ()),
    # routers (api/network/routers.py) and the floating IPs going through them
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 "
               "Neutron networks and access to external networks via a NAT gateway.", ()),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode", "Extension of the "
                    "router abstraction for specifying whether SNAT should occur on the "
                    "external gateway", ()),
    # no network attributes: api/network/quotas.py, ip_availability.py
    "quotas": ("Quota management support", "Expose functions for quotas management per "
               "project (one store with the compute API's os-quota-sets).", ()),
    "quota_details": ("Quota details management support", "Expose functions for quotas "
                      "usage statistics per project", ()),
    "quota-check-limit": ("Quota engine limit check", "Support for checking the resource "
                          "usage before applying a new quota limit", ()),
    "quota-check-limit-default": ("Quota engine limit check by default", "Quota limits "
                                  "below the usage are refused unless check_limit is "
                                  "false", ()),
    "standard-attr-tag": ("Tag support for resources with standard attribute", "Enables "
                          "to set tag on resources with standard attribute.", ("tags",)),
    "network-ip-availability": ("Network IP Availability", "Provides IP availability data "
                                "for each network and subnet.", ()),
    "auto-allocated-topology": ("Auto Allocated Topology Services", "Auto Allocated "
                                "Topology Services (get-me-a-network).", ("is_default",)),
}


class ExtensionNotFound(exceptions.NotFound):
    msg_fmt = "Extension with alias %(alias)s does not exist"


def _view(alias: str) -> dict[str, Any]:
    name, description, _ = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description, "updated": _UPDATED,
            "links": []}


async def index(req: ApiRequest) -> dict[str, Any]:
    return {"extensions": [_view(alias) for alias in EXTENSIONS]}


async def show(req: ApiRequest) -> dict[str, Any]:
    alias = req.path["alias"]
    if alias not in EXTENSIONS:
        raise ExtensionNotFound(alias=alias[:100])
    return {"extension": _view(alias)}
