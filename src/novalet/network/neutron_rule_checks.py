"""The checks and normalisation of a security group rule as the network API
(Neutron) takes it, with Neutron's error types: direction, ethertype, protocol
(a name or a number 0-255), port range (ICMP: type and code), remote side."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from novalet import exceptions

DIRECTIONS = ("ingress", "egress")
ETHERTYPES = ("IPv4", "IPv6")
# The protocol names Neutron takes (IANA's numbers); a rule keeps the name, or the
# number as a string, as it was given (Neutron does the same).
PROTOCOL_NUMBERS: dict[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1,
    "igmp": 2, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113,
    "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112}
_PORTS = (6, 17, 33, 132, 136)     # tcp, udp, dccp, sctp, udplite: port ranges
_ICMP = (1, 58)                    # icmp, ipv6-icmp: type and code


class SecurityGroupRuleInvalidDirection(exceptions.Invalid):
    neutron_type = "InvalidInput"  # Neutron's name for this error
    msg_fmt = ("Security group rule for direction %(direction)s not supported. "
               "Allowed values are ingress, egress.")


class SecurityGroupRuleInvalidEtherType(exceptions.Invalid):
    msg_fmt = ("Security group rule for ethertype %(ethertype)s not supported. "
               "Allowed values are IPv4, IPv6.")


class SecurityGroupRuleInvalidProtocol(exceptions.Invalid):
    msg_fmt = ("Security group rule protocol %(protocol)s not supported. Only protocol "
               "values %(values)s and integer representations [0 to 255] are supported.")


class SecurityGroupInvalidPortValue(exceptions.Invalid):
    msg_fmt = "Invalid value for port %(port)s."


class SecurityGroupInvalidPortRange(exceptions.Invalid):
    msg_fmt = "For TCP/UDP protocols, port_range_min must be <= port_range_max"


class SecurityGroupProtocolRequiredWithPorts(exceptions.Invalid):
    msg_fmt = "Must also specify protocol if port range is given."


class SecurityGroupInvalidProtocolForPort(exceptions.Invalid):
    msg_fmt = ("Invalid protocol %(protocol)s for port range, only supported for TCP, UDP, "
               "UDPLITE, SCTP, DCCP, ICMP and IPv6-ICMP.")


class SecurityGroupInvalidIcmpValue(exceptions.Invalid):
    msg_fmt = "Invalid value for ICMP %(field)s (%(attr)s) %(value)s. It must be 0 to 255."


class SecurityGroupMissingIcmpType(exceptions.Invalid):
    msg_fmt = ("ICMP code (port-range-max) %(value)s is provided but ICMP type "
               "(port-range-min) is missing.")


class SecurityGroupRemoteGroupAndRemoteIpPrefix(exceptions.Invalid):
    neutron_type = "SecurityGroupMultipleRemoteEntites"  # Neutron's name for this error
    msg_fmt = "Only remote_ip_prefix or remote_group_id may be provided."


class SecurityGroupRuleParameterConflict(exceptions.Invalid):
    msg_fmt = "Conflicting value ethertype %(ethertype)s for CIDR %(cidr)s"


class InvalidRemoteIpPrefix(exceptions.Invalid):
    neutron_type = "InvalidInput"  # Neutron's name for this error
    msg_fmt = "'%(prefix)s' is not a valid IP prefix: give an address or a CIDR."


@dataclass(frozen=True)
class RuleSpec:
    """A checked rule: the values of its row (ports as from_port/to_port)."""

    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None


def check_rule(direction: Any, ethertype: Any, protocol: Any, port_range_min: Any,
               port_range_max: Any, remote_ip_prefix: Any, remote_group_id: Any
               ) -> RuleSpec:
    """The rule as stored, or Neutron's 400 for what is wrong with it."""
    if direction not in DIRECTIONS:
        raise SecurityGroupRuleInvalidDirection(direction=direction)
    if ethertype not in ETHERTYPES:
        raise SecurityGroupRuleInvalidEtherType(ethertype=ethertype)
    if remote_ip_prefix is not None and remote_group_id is not None:
        raise SecurityGroupRemoteGroupAndRemoteIpPrefix()
    name = normalise_protocol(protocol)
    low, high = _port(port_range_min), _port(port_range_max)
    _check_ports(name, low, high)
    return RuleSpec(direction, ethertype, name, low, high,
                    _prefix(remote_ip_prefix, ethertype))


def normalise_protocol(protocol: Any) -> str | None:
    """None for any protocol; a known name in lower case; a number 0-255 as its
    decimal string (Neutron keeps numbers as strings, names as names)."""
    if protocol is None or protocol == "any" or (isinstance(protocol, int)
                                                 and not isinstance(protocol, bool)
                                                 and protocol == 0):
        return None
    if isinstance(protocol, bool) or not isinstance(protocol, (str, int)):
        raise _bad_protocol(protocol)
    text = str(protocol).strip()
    number = decimal_protocol(text)
    if number is not None:
        if number > 255:
            raise _bad_protocol(protocol)
        return str(number)
    if text.lower() in PROTOCOL_NUMBERS:
        return text.lower()
    raise _bad_protocol(protocol)


def protocol_number(protocol: str | None) -> int | None:
    """The IP protocol number of a stored protocol (None: any)."""
    if protocol is None:
        return None
    number = decimal_protocol(protocol)
    return number if number is not None else PROTOCOL_NUMBERS.get(protocol.lower())


def decimal_protocol(text: str) -> int | None:
    """`text` as a number when it is written in ASCII digits, at most three after
    leading zeros (0-999: the caller checks 0-255); else None. Not str.isdigit()
    alone: it takes '²' or other scripts' digits, which int() refuses, and int()
    refuses more than 4300 digits."""
    if not (text.isascii() and text.isdigit()):
        return None
    significant = text.lstrip("0")
    return int(significant or "0") if len(significant) <= 3 else None


def _bad_protocol(protocol: Any) -> SecurityGroupRuleInvalidProtocol:
    return SecurityGroupRuleInvalidProtocol(protocol=protocol,
                                            values=sorted(PROTOCOL_NUMBERS))


def _port(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise SecurityGroupInvalidPortValue(port=value)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise SecurityGroupInvalidPortValue(port=value) from None
    if not 0 <= number <= 65535:
        raise SecurityGroupInvalidPortValue(port=value)
    return number


def _check_ports(protocol: str | None, low: int | None, high: int | None) -> None:
    if low is None and high is None:
        return
    number = protocol_number(protocol)
    if number is None:
        raise SecurityGroupProtocolRequiredWithPorts()
    if number in _PORTS:
        if low == 0 or high == 0:
            raise SecurityGroupInvalidPortValue(port=0)
        if low is None or high is None or low > high:
            raise SecurityGroupInvalidPortRange()
    elif number in _ICMP:
        for attr, field, value in (("port_range_min", "type", low),
                                   ("port_range_max", "code", high)):
            if value is not None and not 0 <= value <= 255:
                raise SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=value)
        if low is None:
            raise SecurityGroupMissingIcmpType(value=high)
    else:
        raise SecurityGroupInvalidProtocolForPort(protocol=protocol)


def _prefix(value: Any, ethertype: str) -> str | None:
    """The prefix as a network (10.0.0.5/24 is 10.0.0.0/24, an address a /32 or
    /128); it must be of the rule's ethertype."""
    if value is None:
        return None
    # a scoped IPv6 address (fe80::1%eth0) names a host's link, meaningless here
    if not isinstance(value, str) or "%" in value:
        raise InvalidRemoteIpPrefix(prefix=value)
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidRemoteIpPrefix(prefix=value) from None
    if f"IPv{network.version}" != ethertype:
        raise SecurityGroupRuleParameterConflict(ethertype=ethertype, cidr=value)
    return str(network)
