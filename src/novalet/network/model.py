"""What networking looks like as data: shared by the IPAM, the host driver, the
metadata service, the config drive and the virt drivers. These cross the bus
(plug_vifs, network_host_state, instances' network_info), so they are typed,
versioned BusModels (rpc/models.py): bump a model's VERSION whenever its fields
change, and its containers' too (SecurityRule, Vif and PortFilter are parts of InstanceNet,
which with NetworkOnHost and FloatingNat is part of HostNetworkState);
tests/unit/rpc/test_models.py fails until the new fingerprints are recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from novalet.rpc.models import BusModel


@dataclass
class Vif(BusModel):
    """One guest NIC with its fixed IP, as a host needs it to plug the guest in."""

    VERSION: ClassVar[str] = "1.0"
    id: str                      # virtual interface uuid
    address: str                 # MAC
    network_id: str              # network uuid
    network_label: str
    bridge: str                  # host bridge the tap joins
    fixed_ip: str
    cidr: str                    # e.g. 10.0.0.0/24
    gateway: str
    dns: list[str] = field(default_factory=list)
    vlan: int | None = None
    dhcp: bool = True            # FlatDHCP/VLAN: dnsmasq; Flat: static via network_data.json
    mtu: int | None = None
    floating_ips: list[str] = field(default_factory=list)

    @property
    def tap(self) -> str:
        """The host-side tap device name (15 chars at most, as Linux requires)."""
        return f"tap{self.id[:11]}"


@dataclass
class SecurityRule(BusModel):
    """Traffic allowed to (ingress) or from (egress) an instance: protocol (a name
    such as tcp, udp, icmp, a number, or None for any), port range (ICMP: type and
    code), and the remote side: a CIDR, or the fixed IPs of a group's members.

    1.1: direction and ethertype (before: every rule was IPv4 ingress)."""

    VERSION: ClassVar[str] = "1.1"
    ADDED: ClassVar[dict[str, str]] = {"direction": "1.1", "ethertype": "1.1"}

    protocol: str | None
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    remote_ips: list[str] = field(default_factory=list)
    direction: str = "ingress"
    ethertype: str = "IPv4"


@dataclass
class PortFilter(BusModel):
    """How the firewall treats one NIC (a port) when not as usual: port security off
    (no anti-spoofing, no security groups), administratively down (nothing in or
    out), or allowed address pairs ([address, MAC] it may also send from, its groups
    applying to them too). NICs with the defaults have none."""

    VERSION: ClassVar[str] = "1.0"

    vif_id: str
    port_security: bool = True
    admin_state_up: bool = True
    address_pairs: list[list[str]] = field(default_factory=list)


@dataclass
class InstanceNet(BusModel):
    """Everything a host firewall needs for one instance (1.1: its rules' parts
    carry direction and ethertype; its NICs' port filters, added in the same
    release)."""

    VERSION: ClassVar[str] = "1.1"
    ADDED: ClassVar[dict[str, str]] = {"port_filters": "1.1"}

    instance_uuid: str
    project_id: str
    vifs: list[Vif]
    rules: list[SecurityRule] = field(default_factory=list)
    port_filters: list[PortFilter] = field(default_factory=list)

    def port_filter(self, vif_id: str) -> PortFilter:
        """The NIC's filter settings (the defaults when it has none listed)."""
        return next((f for f in self.port_filters if f.vif_id == vif_id), PortFilter(vif_id))


@dataclass
class NetworkOnHost(BusModel):
    """A network as one host serves it: bridge, gateway address, DHCP.

    1.1: needs_router and snat_address, its way to the outside (a network made
    through the network API reaches it only through a router's gateway)."""

    VERSION: ClassVar[str] = "1.1"
    ADDED: ClassVar[dict[str, str]] = {"needs_router": "1.1", "snat_address": "1.1"}

    uuid: str
    label: str
    cidr: str
    gateway: str
    bridge: str
    dhcp_start: str
    netmask: str
    vlan: int | None = None
    # the physical uplink: the VLAN's parent (vlan set) or a port of the bridge (flat)
    interface: str | None = None
    multi_host: bool = False              # served by each host its guests are on
    dhcp: bool = True
    dns: list[str] = field(default_factory=list)
    mtu: int | None = None
    # MAC -> (IP, hostname) for dnsmasq's static hosts
    hosts: dict[str, tuple[str, str]] = field(default_factory=dict)
    # False (the nova-network face's networks): masqueraded to the outside by the
    # host, as always. True: reaches the outside only SNATed to snat_address, the
    # gateway address of its router (None: no router with a gateway and SNAT on)
    needs_router: bool = False
    snat_address: str | None = None

    def __post_init__(self) -> None:
        # JSON carries the (IP, hostname) pairs as lists
        self.hosts = {mac: (ip, name) for mac, (ip, name) in self.hosts.items()}


@dataclass
class FloatingNat(BusModel):
    """A floating IP NATed to a fixed IP, on `interface` (None: no device)."""

    VERSION: ClassVar[str] = "1.0"
    floating_ip: str
    fixed_ip: str
    interface: str | None = None


@dataclass
class HostNetworkState(BusModel):
    """The whole desired networking of one host; the driver makes the kernel match it.

    1.1: rules have a direction; egress_filtered says instances' egress is limited
    to their egress rules (a 1.0 sender knew only ingress: its state allows all
    egress, as that release's firewall did). 1.2: its networks' needs_router and
    snat_address (NetworkOnHost 1.1)."""

    VERSION: ClassVar[str] = "1.2"
    ADDED: ClassVar[dict[str, str]] = {"egress_filtered": "1.1"}
    host: str
    networks: list[NetworkOnHost] = field(default_factory=list)
    instances: list[InstanceNet] = field(default_factory=list)
    floating: list[FloatingNat] = field(default_factory=list)
    metadata_host: str = "127.0.0.1"   # where 169.254.169.254:80 is DNATed to
    metadata_port: int = 8775
    public_interface: str | None = None  # floating IPs are added here; None: no device
    egress_filtered: bool = False
