"""Which address ranges a subnet may have: every host serving a network puts its
gateway and prefix on a bridge, so a subnet over a special range (loopback,
link-local and the metadata address, multicast, reserved) or over the floating
pools or over the addresses the cloud's services use would route host or public
traffic into a tenant's bridge. Members stay
inside the tenant ranges ([network] tenant_subnet_ranges, or fixed_range)."""

from __future__ import annotations

import ipaddress

from novalet import config
from novalet.network.api import parse_floating_pools

# Ranges no subnet may overlap, whoever asks (RFC 6890's special-purpose blocks
# a host treats specially).
SPECIAL = {
    "0.0.0.0/8": "'this network' (0.0.0.0/8)",
    "127.0.0.0/8": "loopback",
    "169.254.0.0/16": "link-local (the metadata address 169.254.169.254 among them)",
    "224.0.0.0/4": "multicast",
    "240.0.0.0/4": "reserved (with the limited broadcast address)",
}


def refusal(cidr: ipaddress.IPv4Network, conf: config.Config, is_admin: bool) -> str | None:
    """Why a subnet may not have `cidr` (for an admin, or for a member), or None."""
    for special, what in SPECIAL.items():
        if cidr.overlaps(ipaddress.IPv4Network(special)):
            return f"cidr {cidr} overlaps the {what} range {special}; choose a private range"
    for address in service_addresses(conf):
        if address in cidr:
            return (f"cidr {cidr} holds {address}, an address this cloud's services use "
                    "(database, message bus or API); choose another range")
    for pool in _floating_pools(conf):
        if cidr.overlaps(pool):
            return (f"cidr {cidr} overlaps the floating IP range {pool} ([network] "
                    "floating_ip_pools); choose another range")
    if is_admin:
        return None
    allowed = tenant_ranges(conf)
    if not any(cidr.subnet_of(r) for r in allowed):
        return (f"cidr {cidr} is outside the ranges projects' subnets are cut from ("
                + ", ".join(map(str, allowed)) + "); choose a range inside one of them")
    return None


def tenant_ranges(conf: config.Config) -> list[ipaddress.IPv4Network]:
    """[network] tenant_subnet_ranges and fixed_range, the malformed ones skipped
    (the network service refuses them at start)."""
    text = f"{conf.get('network', 'tenant_subnet_ranges')},{conf.get('network', 'fixed_range')}"
    return [n for n in map(ipv4_network, text.split(",")) if n is not None]


def service_addresses(conf: config.Config) -> list[ipaddress.IPv4Address]:
    """The IPv4 literals the services are reached at ([database] connection,
    [DEFAULT] transport_url, the API and metadata listen addresses): a subnet over one
    would give the serving host a connected route to it through a tenant's bridge.
    Host names are not resolved (cheap and deterministic)."""
    texts = [str(conf.get("api", "listen")), str(conf.get("metadata", "listen"))]
    for url in (conf.get("database", "connection"), conf.get("DEFAULT", "transport_url")):
        netloc = str(url or "").split("://", 1)[-1].split("/", 1)[0]
        for part in netloc.split(","):  # several brokers: user:pass@h1:5672,user:pass@h2
            texts.append(part.rsplit("@", 1)[-1].rsplit(":", 1)[0])
    found = []
    for text in texts:
        try:
            address = ipaddress.ip_address(text.strip())
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv4Address) and not address.is_unspecified:
            found.append(address)
    return found


def _floating_pools(conf: config.Config) -> list[ipaddress.IPv4Network]:
    try:
        pools = parse_floating_pools(str(conf.get("network", "floating_ip_pools")))
    except ValueError:
        return []
    return [n for n in (ipv4_network(p.cidr) for p in pools) if n is not None]


def ipv4_network(text: str) -> ipaddress.IPv4Network | None:
    """The IPv4 network `text` names (host bits allowed); None for anything else."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    return network if isinstance(network, ipaddress.IPv4Network) else None
