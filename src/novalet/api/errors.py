"""Error bodies as each OpenStack service shapes them."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

_NOVA_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden",
               404: "itemNotFound", 405: "badMethod", 406: "notAcceptable",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType",
               429: "overLimit", 501: "notImplemented", 503: "serviceUnavailable"}

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
           413: "Request Entity Too Large", 415: "Unsupported Media Type",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


def nova_body(code: int, message: str) -> dict[str, Any]:
    """{"itemNotFound": {"code": 404, "message": "..."}}"""
    return {_NOVA_NAMES.get(code, "computeFault"): {"code": code, "message": message}}


def keystone_body(code: int, message: str) -> dict[str, Any]:
    """{"error": {"code": 401, "message": "...", "title": "Unauthorized"}}"""
    return {"error": {"code": code, "message": message, "title": _TITLES.get(code, "Error")}}


def glance_body(code: int, message: str) -> dict[str, Any]:
    """Glance answers with the status title and the explanation."""
    return {"code": code, "title": _TITLES.get(code, "Error"), "message": message,
            "error": {"code": code, "title": _TITLES.get(code, "Error"),
                      "message": message}}


# The `type` of a Neutron error body when the exception has no Neutron name of its
# own (webob's exception names, as Neutron answers for routing and HTTP errors).
_NEUTRON_TYPES = {400: "BadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden",
                  404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 409: "Conflict",
                  413: "HTTPRequestEntityTooLarge", 415: "HTTPUnsupportedMediaType",
                  500: "HTTPInternalServerError", 501: "HTTPNotImplemented",
                  503: "ServiceUnavailable"}

# Exception class names that are Neutron's own exception names too: the body's
# `type` is the class name. (Other errors set `neutron_type` on their class.)
NEUTRON_NAMES = frozenset({"NetworkNotFound", "NetworkInUse", "PolicyNotAuthorized",
                           "VlanIdInUse", "InvalidSharedSetting", "InvalidInput"}) | {
    # subnets (network/subnets.py)
    "BadRequest", "SubnetNotFound", "SubnetInUse", "InvalidAllocationPool",
    "OutOfBoundsAllocationPool", "OverlappingAllocationPools",
    "GatewayConflictWithAllocationPools", "GatewayIpInUse", "DNSNameServersExhausted",
    "HostRoutesExhausted",
    # security groups (network/neutron_security_groups.py, neutron_rule_checks.py)
    "SecurityGroupNotFound", "SecurityGroupRuleNotFound", "SecurityGroupRuleExists",
    "SecurityGroupInUse", "SecurityGroupCannotRemoveDefault",
    "SecurityGroupCannotUpdateDefault", "SecurityGroupDefaultAlreadyExists", "OverQuota",
    "SecurityGroupRuleInvalidEtherType", "SecurityGroupRuleInvalidProtocol",
    "SecurityGroupInvalidPortValue", "SecurityGroupInvalidPortRange",
    "SecurityGroupProtocolRequiredWithPorts", "SecurityGroupInvalidProtocolForPort",
    "SecurityGroupInvalidIcmpValue", "SecurityGroupMissingIcmpType",
    "SecurityGroupRuleParameterConflict",
    # floating IPs (network/floating_ips.py)
    "FloatingIPNotFound", "PortNotFound", "InvalidIpForNetwork", "IpAddressAlreadyAllocated",
    "IpAddressGenerationFailure", "FloatingIPPortAlreadyAssociated"}


def neutron_body(code: int, message: str, type_name: str | None = None) -> dict[str, Any]:
    """{"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}"""
    return {"NeutronError": {"type": type_name or _NEUTRON_TYPES.get(code, "NeutronException"),
                             "message": message, "detail": ""}}


def neutron_error(exc: Any) -> dict[str, Any]:
    """The Neutron body of a Novalet error: its Neutron exception name as `type`."""
    name = getattr(exc, "neutron_type", None)
    if name is None and type(exc).__name__ in NEUTRON_NAMES:
        name = type(exc).__name__
    return neutron_body(exc.code, exc.message, name)


Formatter = Callable[[int, str], dict[str, Any]]


def formatter_for(path: str) -> Formatter:
    """The error body shape of the front-end serving `path`."""
    if path.startswith("/identity"):
        return keystone_body
    if path.startswith("/image"):
        return glance_body
    if path == "/network" or path.startswith("/network/"):
        return neutron_body
    return nova_body
