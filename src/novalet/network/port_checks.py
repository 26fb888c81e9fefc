"""Checks of a port's attributes with Neutron's errors (network/ports.py): the MAC,
the fixed IPs asked for against the network's one subnet, allowed address pairs."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from novalet import exceptions
from novalet.db.models import Network

MAX_ADDRESS_PAIRS = 10  # Neutron's default max_allowed_address_pair
_MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")  # whole string: fullmatch


class NeutronNamed:
    """Mixin: the error's Neutron type (the NeutronError body's `type`) is its class
    name, so each is defined once, with Neutron's name."""

    neutron_type: str = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.neutron_type = cls.__name__


class InvalidInput(NeutronNamed, exceptions.Invalid):
    msg_fmt = "Invalid input for operation: %(error_message)s."


class InvalidIpForSubnet(NeutronNamed, exceptions.Invalid):
    msg_fmt = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class InvalidIpForNetwork(NeutronNamed, exceptions.Invalid):
    msg_fmt = ("IP address %(ip_address)s is not a valid IP for any of the subnets on the "
               "specified network.")


class DuplicateAddressPairInRequest(NeutronNamed, exceptions.Invalid):
    msg_fmt = ("Request contains duplicate address pair: mac_address %(mac_address)s "
               "ip_address %(ip_address)s.")


class AllowedAddressPairExhausted(NeutronNamed, exceptions.Invalid):
    msg_fmt = "The number of allowed address pair exceeds the maximum %(quota)s."


@dataclass(frozen=True)
class Subnet:
    """The network's subnet, as the checks need it."""

    uuid: str
    cidr: ipaddress.IPv4Network


def mac_address(value: Any) -> str:
    """A unicast MAC other than all zeros, in lower case (Neutron refuses the rest)."""
    text = value.lower() if isinstance(value, str) else ""
    if not _MAC.fullmatch(text) or text == "00:00:00:00:00:00" or int(text[:2], 16) & 1:
        raise InvalidInput(error_message=f"'{value}' is not a valid MAC address (a "
                           "unicast address such as fa:16:3e:12:34:56)")
    return text


def network_subnet(network: Network, subnet_uuid: str | None) -> Subnet:
    """The network's subnet; a network without one can't have ports here (a port
    holds exactly one address)."""
    if network.cidr is None or subnet_uuid is None:
        raise InvalidInput(error_message=(
            f"network {network.uuid} has no subnet: a port here holds one IPv4 address of "
            "its network's subnet; create the subnet first"))
    cidr = ipaddress.ip_network(network.cidr, strict=False)
    assert isinstance(cidr, ipaddress.IPv4Network)
    return Subnet(subnet_uuid, cidr)


def fixed_ip(value: Any, network: Network, subnet: Subnet) -> str | None:
    """The address asked for by `fixed_ips` ([{"subnet_id", "ip_address"}], one
    entry at most: a port has one address here); None to let the allocator pick."""
    if not isinstance(value, list):
        raise InvalidInput(error_message=f"fixed_ips {value!r} is not a list")
    if len(value) != 1:
        raise InvalidInput(error_message=(
            "a port holds exactly one IPv4 address here: give fixed_ips one entry "
            "({\"subnet_id\"} and/or {\"ip_address\"}), or leave it out"))
    entry = value[0]
    if not isinstance(entry, dict) or not entry or set(entry) - {"subnet_id", "ip_address"}:
        raise InvalidInput(error_message=(
            f"fixed_ips entry {entry!r} must have subnet_id and/or ip_address, and nothing else"))
    subnet_id = entry.get("subnet_id")
    if subnet_id is not None and subnet_id != subnet.uuid:
        raise InvalidInput(error_message=(
            f"Failed to create port on network {network.uuid}, because fixed_ips included "
            f"invalid subnet {subnet_id}"))
    address = entry.get("ip_address")
    if address is None:
        return None
    parsed = _ipv4(address)
    if parsed is None or parsed not in subnet.cidr:
        if subnet_id is not None:
            raise InvalidIpForSubnet(ip_address=address)
        raise InvalidIpForNetwork(ip_address=address)
    return str(parsed)


def address_pairs(value: Any, port_mac: str | None, *,
                  within: ipaddress.IPv4Network | None = None) -> list[dict[str, str]]:
    """allowed_address_pairs as stored: [{"ip_address", "mac_address"}], the MAC
    defaulting to the port's. Only single IPv4 addresses (a /32 reads as one): the
    host firewall matches one address per pair. `within` (the port's subnet, for a
    caller who is not an admin) limits the addresses: the host routes nothing from
    outside a bridge's network anyway, and a pair is no licence to claim others'."""
    if not isinstance(value, list):
        raise InvalidInput(error_message=f"allowed_address_pairs {value!r} is not a list")
    if len(value) > MAX_ADDRESS_PAIRS:
        raise AllowedAddressPairExhausted(quota=MAX_ADDRESS_PAIRS)
    pairs: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or "ip_address" not in item or \
                set(item) - {"ip_address", "mac_address"}:
            raise InvalidInput(error_message=(
                f"allowed address pair {item!r} must have ip_address (and may have "
                "mac_address), nothing else"))
        address = _pair_address(item["ip_address"])
        if within is not None and ipaddress.IPv4Address(address) not in within:
            raise InvalidInput(error_message=(
                f"allowed address pair {address} is outside the port's subnet {within}: "
                "only an admin may allow addresses of other networks"))
        mac = item.get("mac_address")
        mac = mac_address(mac) if mac is not None else (port_mac or "")
        pair = {"ip_address": address, "mac_address": mac}
        if pair in pairs:
            raise DuplicateAddressPairInRequest(mac_address=mac, ip_address=address)
        pairs.append(pair)
    return pairs


def _pair_address(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        network = None
    if network is None:
        raise InvalidInput(error_message=f"'{value}' is not a valid IP address or CIDR")
    if network.version != 4 or network.prefixlen != 32:
        raise InvalidInput(error_message=(
            f"allowed address pair {value} is not served here: only single IPv4 addresses "
            "(the host firewall lets a port send from each one)"))
    return str(network.network_address)


def _ipv4(value: Any) -> ipaddress.IPv4Address | None:
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return address if isinstance(address, ipaddress.IPv4Address) else None
