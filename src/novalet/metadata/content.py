"""The metadata documents a guest reads, built by pure functions from one typed record.

The metadata service and the config drive both build their documents here, so
a guest finds the same meta_data.json, network_data.json and EC2 tree whichever
way it looks (only random_seed differs: it is fresh on every build). Layouts
and field names are Nova's, as cloud-init's OpenStack, ConfigDrive and EC2
datasources read them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import string
from dataclasses import dataclass, field
from typing import Any, ClassVar

from novalet.network.model import Vif
from novalet.rpc.models import BusModel

LATEST = "latest"

# OpenStack metadata versions, oldest first, with what each one added. A guest
# asks for the newest one it knows; `latest` is everything.
OPENSTACK_VERSIONS: tuple[str, ...] = (
    "2012-08-10",  # Folsom: meta_data.json, user_data
    "2013-04-04",  # Grizzly: random_seed; password
    "2013-10-17",  # Havana: vendor_data.json
    "2015-10-15",  # Liberty: network_data.json; keys and project_id in meta_data.json
    "2016-06-30",  # Newton: devices in meta_data.json
    "2016-10-06",  # Newton: vendor_data2.json
    "2017-02-22",  # Ocata: vlan and vf_trusted in devices
    "2018-08-27",  # Rocky: more device fields
    "2020-10-14",  # Victoria: dedicated_cpus in meta_data.json
)
RANDOM_SEED_FROM = PASSWORD_FROM = "2013-04-04"
VENDOR_DATA_FROM = "2013-10-17"
NETWORK_DATA_FROM = KEYS_FROM = PROJECT_ID_FROM = "2015-10-15"
DEVICES_FROM = "2016-06-30"
VENDOR_DATA2_FROM = "2016-10-06"
DEDICATED_CPUS_FROM = "2020-10-14"

# EC2 metadata versions, oldest first, with what each one added to meta-data/.
EC2_VERSIONS: tuple[str, ...] = (
    "1.0",         # ami-id, ami-launch-index, ami-manifest-path, hostname, instance-id,
                   # local-ipv4, public-keys, reservation-id, security-groups
    "2007-01-19",  # local-hostname, public-hostname, public-ipv4
    "2007-03-01",
    "2007-08-29",  # instance-type
    "2007-10-10",
    "2007-12-15",  # block-device-mapping
    "2008-02-01",  # placement/availability-zone
    "2008-09-01",  # instance-action
    "2009-04-04",
)

# The config drive carries these versions (Nova leaves the older EC2 ones out).
CONFIG_DRIVE_OPENSTACK_VERSIONS: tuple[str, ...] = (*OPENSTACK_VERSIONS, LATEST)
CONFIG_DRIVE_EC2_VERSIONS: tuple[str, ...] = ("2009-04-04", LATEST)

RANDOM_SEED_BYTES = 512
MAX_PASSWORD_BYTES = 256
IDENTITY_DOCUMENT_VERSION = "2017-09-30"


@dataclass
class InstanceMetadata(BusModel):
    """Everything the metadata documents of one instance are built from.

    `password` is the encrypted password the guest posted (served back at
    openstack/<v>/password); `admin_pass` is the plain one chosen at boot and
    goes on the config drive only, never to the metadata service.

    A bus model, so a metadata service without a database can be sent it: on the
    bus user_data is base64 and launched_at ISO 8601 (rpc/models.py).
    """

    VERSION: ClassVar[str] = "1.0"
    uuid: str
    name: str
    hostname: str
    project_id: str = ""
    availability_zone: str = "nova"
    launch_index: int = 0
    reservation_id: str = ""
    public_keys: dict[str, str] = field(default_factory=dict)   # key name -> public key
    user_data: bytes | None = None
    meta: dict[str, str] = field(default_factory=dict)
    vifs: list[Vif] = field(default_factory=list)
    image_id: str = ""                 # image uuid, or an EC2 id (ami-…)
    instance_type: str = ""            # flavor name
    local_ipv4: str | None = None      # None: the first vif's fixed IP
    public_ipv4: str | None = None     # None: the first floating IP of the vifs
    launched_at: dt.datetime | None = None
    vendor_data: dict[str, Any] = field(default_factory=dict)
    vendor_data2: dict[str, Any] = field(default_factory=dict)
    admin_pass: str | None = None
    password: str | None = None
    ec2_id: int | None = None          # None: derived from the uuid
    security_groups: list[str] = field(default_factory=list)
    root_device_name: str = "/dev/vda"
    dedicated_cpus: list[int] = field(default_factory=list)

    @property
    def fixed_ipv4(self) -> str:
        if self.local_ipv4:
            return self.local_ipv4
        return next((vif.fixed_ip for vif in self.vifs if vif.fixed_ip), "")

    @property
    def floating_ipv4(self) -> str:
        if self.public_ipv4:
            return self.public_ipv4
        return next((ip for vif in self.vifs for ip in vif.floating_ips), "")


# --- versions -------------------------------------------------------------------

def is_openstack_version(version: str) -> bool:
    return version == LATEST or version in OPENSTACK_VERSIONS


def is_ec2_version(version: str) -> bool:
    return version == LATEST or version in EC2_VERSIONS


def openstack_at_least(version: str, first: str) -> bool:
    """Whether the OpenStack metadata `version` has what `first` added."""
    return version == LATEST or OPENSTACK_VERSIONS.index(version) >= OPENSTACK_VERSIONS.index(first)


def ec2_at_least(version: str, first: str) -> bool:
    """Whether the EC2 metadata `version` has what `first` added."""
    return version == LATEST or EC2_VERSIONS.index(version) >= EC2_VERSIONS.index(first)


# --- the OpenStack layout ---------------------------------------------------------

def openstack_listing(md: InstanceMetadata, version: str) -> list[str]:
    """The files of openstack/<version>/ as the service lists them."""
    names = ["meta_data.json"]
    if md.user_data is not None:
        names.append("user_data")
    if openstack_at_least(version, PASSWORD_FROM):
        names.append("password")
    if openstack_at_least(version, VENDOR_DATA_FROM):
        names.append("vendor_data.json")
    if openstack_at_least(version, NETWORK_DATA_FROM):
        names.append("network_data.json")
    if openstack_at_least(version, VENDOR_DATA2_FROM):
        names.append("vendor_data2.json")
    return names


def openstack_meta_data(md: InstanceMetadata, version: str = LATEST, *,
                        random_seed: bytes | None = None,
                        include_admin_pass: bool = False) -> dict[str, Any]:
    """meta_data.json. random_seed defaults to fresh random bytes; admin_pass only
    when asked (the config drive), as Nova never serves it over the network."""
    doc: dict[str, Any] = {
        "uuid": md.uuid, "name": md.name, "hostname": md.hostname,
        "availability_zone": md.availability_zone, "launch_index": md.launch_index,
        "meta": dict(md.meta), "public_keys": dict(md.public_keys),
    }
    if openstack_at_least(version, RANDOM_SEED_FROM):
        seed = random_seed if random_seed is not None else os.urandom(RANDOM_SEED_BYTES)
        doc["random_seed"] = base64.b64encode(seed).decode()
    if openstack_at_least(version, KEYS_FROM):
        doc["keys"] = [{"name": name, "type": "ssh", "data": data}
                       for name, data in md.public_keys.items()]
        doc["project_id"] = md.project_id
    if openstack_at_least(version, DEVICES_FROM):
        doc["devices"] = []
    if openstack_at_least(version, DEDICATED_CPUS_FROM):
        doc["dedicated_cpus"] = list(md.dedicated_cpus)
    if include_admin_pass and md.admin_pass is not None:
        doc["admin_pass"] = md.admin_pass
    return doc


def network_data(md: InstanceMetadata) -> dict[str, Any]:
    """network_data.json: a link per vif, a network per fixed IP (DHCP or static
    with its default route), and the DNS servers of every network."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    dns: list[str] = []
    for vif in md.vifs:
        link = vif.tap
        links.append({"id": link, "vif_id": vif.id, "type": "phy",
                      "ethernet_mac_address": vif.address, "mtu": vif.mtu})
        for server in vif.dns:
            if server not in dns:
                dns.append(server)
        if vif.dhcp:
            ipv6 = _is_ipv6(vif.cidr)
            networks.append({"id": f"network{len(networks)}", "link": link,
                             "type": "ipv6_dhcp" if ipv6 else "ipv4_dhcp",
                             "network_id": vif.network_id})
        elif vif.fixed_ip:
            networks.append(_static_network(f"network{len(networks)}", link, vif))
    return {"links": links, "networks": networks,
            "services": [{"type": "dns", "address": server} for server in dns]}


def _static_network(network_id: str, link: str, vif: Vif) -> dict[str, Any]:
    subnet = ipaddress.ip_network(vif.cidr, strict=False)
    default = "::" if subnet.version == 6 else "0.0.0.0"
    routes = ([{"network": default, "netmask": default, "gateway": vif.gateway}]
              if vif.gateway else [])
    return {"id": network_id, "link": link, "type": f"ipv{subnet.version}",
            "ip_address": vif.fixed_ip, "netmask": str(subnet.netmask),
            "routes": routes, "network_id": vif.network_id,
            "services": [{"type": "dns", "address": server} for server in vif.dns]}


def _is_ipv6(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).version == 6
    except ValueError:
        return False


def vendor_data(md: InstanceMetadata) -> dict[str, Any]:
    """vendor_data.json: what the operator's vendordata_json file gives every guest."""
    return dict(md.vendor_data)


def vendor_data2(md: InstanceMetadata) -> dict[str, Any]:
    """vendor_data2.json: dynamic vendor data by service name (none yet: {})."""
    return dict(md.vendor_data2)


# --- the EC2 layout ---------------------------------------------------------------

def ec2_instance_id(md: InstanceMetadata) -> str:
    """i-%08x from the instance's integer id, else from the first 32 bits of its uuid."""
    return _ec2_id("i", md.ec2_id, md.uuid)


def ec2_ami_id(md: InstanceMetadata) -> str:
    if md.image_id.startswith("ami-"):
        return md.image_id
    return _ec2_id("ami", None, md.image_id)


def _ec2_id(prefix: str, number: int | None, uuid: str) -> str:
    if number is None:
        digits = uuid.replace("-", "")[:8].lower()
        if len(digits) == 8 and all(c in string.hexdigits for c in digits):
            number = int(digits, 16)
        elif uuid:
            number = int(hashlib.sha256(uuid.encode()).hexdigest()[:8], 16)
        else:
            number = 0
    return f"{prefix}-{number & 0xFFFFFFFF:08x}"


def ec2_meta_data(md: InstanceMetadata, version: str = LATEST) -> dict[str, Any]:
    """The meta-data/ tree: dicts are directories, everything else a file."""
    tree: dict[str, Any] = {
        "ami-id": ec2_ami_id(md),
        "ami-launch-index": md.launch_index,
        "ami-manifest-path": "(unknown)",
        "hostname": md.hostname,
        "instance-id": ec2_instance_id(md),
        "local-ipv4": md.fixed_ipv4,
        "reservation-id": md.reservation_id,
        "security-groups": list(md.security_groups),
    }
    if md.public_keys:
        tree["public-keys"] = {str(index): {"openssh-key": key}
                               for index, key in enumerate(md.public_keys.values())}
    if ec2_at_least(version, "2007-01-19"):
        tree["local-hostname"] = md.hostname
        tree["public-hostname"] = md.hostname
        tree["public-ipv4"] = md.floating_ipv4
    if ec2_at_least(version, "2007-08-29"):
        tree["instance-type"] = md.instance_type
    if ec2_at_least(version, "2007-12-15"):
        tree["block-device-mapping"] = {"ami": md.root_device_name.removeprefix("/dev/"),
                                        "root": md.root_device_name}
    if ec2_at_least(version, "2008-02-01"):
        tree["placement"] = {"availability-zone": md.availability_zone}
    if ec2_at_least(version, "2008-09-01"):
        tree["instance-action"] = "none"
    return tree


def ec2_public_keys_listing(md: InstanceMetadata) -> list[str]:
    """meta-data/public-keys/ lists `index=name`; the key is at <index>/openssh-key."""
    return [f"{index}={name}" for index, name in enumerate(md.public_keys)]


def instance_identity(md: InstanceMetadata) -> dict[str, Any]:
    """dynamic/instance-identity/document, in the shape EC2 gives it."""
    launched = md.launched_at
    return {
        "accountId": md.project_id,
        "availabilityZone": md.availability_zone,
        "imageId": ec2_ami_id(md),
        "instanceId": ec2_instance_id(md),
        "instanceType": md.instance_type,
        "pendingTime": launched.strftime("%Y-%m-%dT%H:%M:%SZ") if launched else None,
        "privateIp": md.fixed_ipv4 or None,
        "version": IDENTITY_DOCUMENT_VERSION,
    }


# --- the config drive ------------------------------------------------------------

def config_drive_files(md: InstanceMetadata, *,
                       random_seed: bytes | None = None) -> dict[str, bytes]:
    """Every file of a config drive by path: openstack/<version>/… for every
    OpenStack version and latest, ec2/<version>/meta-data.json and user-data."""
    seed = random_seed if random_seed is not None else os.urandom(RANDOM_SEED_BYTES)
    files: dict[str, bytes] = {}
    for version in CONFIG_DRIVE_OPENSTACK_VERSIONS:
        base = f"openstack/{version}"
        files[f"{base}/meta_data.json"] = to_json(
            openstack_meta_data(md, version, random_seed=seed, include_admin_pass=True))
        if md.user_data is not None:
            files[f"{base}/user_data"] = md.user_data
        if openstack_at_least(version, VENDOR_DATA_FROM):
            files[f"{base}/vendor_data.json"] = to_json(vendor_data(md))
        if openstack_at_least(version, NETWORK_DATA_FROM):
            files[f"{base}/network_data.json"] = to_json(network_data(md))
        if openstack_at_least(version, VENDOR_DATA2_FROM):
            files[f"{base}/vendor_data2.json"] = to_json(vendor_data2(md))
    for version in CONFIG_DRIVE_EC2_VERSIONS:
        files[f"ec2/{version}/meta-data.json"] = to_json(ec2_meta_data(md, version))
        if md.user_data is not None:
            files[f"ec2/{version}/user-data"] = md.user_data
    return files


def to_json(document: dict[str, Any]) -> bytes:
    """The one serialization of every JSON document, so drive and service agree byte
    for byte."""
    return json.dumps(document, sort_keys=True).encode()
