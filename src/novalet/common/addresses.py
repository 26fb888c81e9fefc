"""IP addresses in the one written form Nova keeps and shows."""

from __future__ import annotations

import ipaddress


def canonical_ip(text: str | None) -> str | None:
    """`text` in RFC 5952 form (shortest, lower case, an IPv4-mapped address with its
    dotted quad, as netaddr writes it and Tempest compares); not an address: as is."""
    if not text:
        return text
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)
