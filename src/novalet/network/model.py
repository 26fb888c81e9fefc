"""What networking looks like as data: shared by the IPAM, the host driver, the
metadata service, the config drive and the virt drivers. JSON-friendly (it
crosses the bus) and versioned like the compute payloads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Vif:
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vif:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclass
class SecurityRule:
    """Ingress allowed to an instance: protocol (tcp, udp, icmp or None for any),
    port range, and a source: a CIDR, or the fixed IPs of a group's members."""

    protocol: str | None
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    remote_ips: list[str] = field(default_factory=list)


@dataclass
class InstanceNet:
    """Everything a host firewall needs for one instance."""

    instance_uuid: str
    project_id: str
    vifs: list[Vif]
    rules: list[SecurityRule] = field(default_factory=list)


@dataclass
class NetworkOnHost:
    """A network as one host serves it: bridge, gateway address, DHCP."""

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


@dataclass
class FloatingNat:
    floating_ip: str
    fixed_ip: str
    interface: str | None = None


@dataclass
class HostNetworkState:
    """The whole desired networking of one host; the driver makes the kernel match it."""

    VERSION: ClassVar[str] = "1.0"
    host: str
    networks: list[NetworkOnHost] = field(default_factory=list)
    instances: list[InstanceNet] = field(default_factory=list)
    floating: list[FloatingNat] = field(default_factory=list)
    metadata_host: str = "127.0.0.1"   # where 169.254.169.254:80 is DNATed to
    metadata_port: int = 8775
    public_interface: str | None = None  # floating IPs are added here; None: no device

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostNetworkState:
        def network(n: dict[str, Any]) -> NetworkOnHost:
            return NetworkOnHost(**{**n, "hosts": {mac: (ip, name) for mac, (ip, name)
                                                   in n.get("hosts", {}).items()}})

        def instance(i: dict[str, Any]) -> InstanceNet:
            return InstanceNet(instance_uuid=i["instance_uuid"], project_id=i["project_id"],
                               vifs=[Vif.from_dict(v) for v in i["vifs"]],
                               rules=[SecurityRule(**r) for r in i.get("rules", [])])

        return cls(host=data["host"],
                   networks=[network(n) for n in data.get("networks", [])],
                   instances=[instance(i) for i in data.get("instances", [])],
                   floating=[FloatingNat(**f) for f in data.get("floating", [])],
                   metadata_host=data.get("metadata_host", "127.0.0.1"),
                   metadata_port=data.get("metadata_port", 8775),
                   public_interface=data.get("public_interface"))
