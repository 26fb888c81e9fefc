"""Host networking on Linux, nova-network style: bridges, taps and VLAN interfaces by
netlink, DHCP by dnsmasq, NAT and security groups by nftables."""

from novalet.network.linux.driver import ApplyIncomplete, HostNetworkTaken, LinuxNetDriver
from novalet.network.linux.errors import LinuxNetError

__all__ = ["ApplyIncomplete", "HostNetworkTaken", "LinuxNetDriver", "LinuxNetError"]
