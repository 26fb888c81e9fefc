"""Allocation pools as the fixed_ips rows hold them: the pure arithmetic shared by
the subnet mirror (db/subnets.py) and network creation (db/network.py).

A network's fixed_ips rows are the truth the allocator reads: an address is handed
out when its row is not reserved. A subnet's allocation pools are the runs of such
addresses; going the other way, an address is reserved when no pool holds it."""

from __future__ import annotations

import ipaddress
import uuid as uuidlib
from collections.abc import Sequence

from novalet.db.models import Network, Subnet

Pool = dict[str, str]  # {"start": address, "end": address}


def pools_of(addresses: Sequence[tuple[str, bool]]) -> list[Pool]:
    """The runs of consecutive unreserved addresses among (address, reserved)."""
    free = sorted(ipaddress.IPv4Address(a) for a, reserved in addresses if not reserved)
    pools: list[Pool] = []
    last: ipaddress.IPv4Address | None = None
    for address in free:
        if last is not None and int(address) == int(last) + 1:
            pools[-1]["end"] = str(address)
        else:
            pools.append({"start": str(address), "end": str(address)})
        last = address
    return pools


def in_pools(address: str, pools: Sequence[Pool]) -> bool:
    return int(ipaddress.IPv4Address(address)) in pooled(pools)


def pooled(pools: Sequence[Pool]) -> set[int]:
    """The addresses (as integers) the pools hold: one set built per change, so that
    marking a subnet's rows costs one lookup per address, not one per address and pool.
    Pools lie inside a subnet of at most 1024 addresses (checked before)."""
    held: set[int] = set()
    for pool in pools:
        held.update(range(int(ipaddress.IPv4Address(pool["start"])),
                          int(ipaddress.IPv4Address(pool["end"])) + 1))
    return held


def mirror_subnet(network: Network, addresses: Sequence[tuple[str, bool]]) -> Subnet:
    """The subnet a network made through os-networks has: its L3 columns as Neutron
    shows them, the pools being what its address rows leave free."""
    assert network.cidr is not None
    return Subnet(uuid=str(uuidlib.uuid4()), network_id=network.id, name="", description="",
                  project_id=network.project_id, ip_version=4, cidr=network.cidr,
                  gateway_ip=network.gateway, enable_dhcp=network.enable_dhcp,
                  allocation_pools=pools_of(addresses),
                  dns_nameservers=[s for s in (network.dns1, network.dns2) if s],
                  host_routes=[])
