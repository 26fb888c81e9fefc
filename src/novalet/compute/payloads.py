"""Typed, versioned models of what crosses the bus for compute work.

Bump a model's VERSION whenever its fields change (rules in rpc/models.py);
tests/unit/rpc/test_models.py fails until the recorded fingerprint is updated
with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from novalet import exceptions
from novalet.rpc.models import BusModel

from novalet.compute.driver_types import GuestSpec, ImageMeta
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.scheduling_group import SchedulingGroup
from novalet.network.model import Vif

_IMAGE_NOT_PROPERTIES = {
    "id", "name", "disk_format", "container_format", "size", "checksum", "os_hash_algo",
    "os_hash_value", "min_disk",
    "status", "visibility", "protected", "os_hidden", "owner", "virtual_size", "min_ram",
    "created_at", "updated_at", "tags", "self", "file", "schema", "direct_url", "locations",
    "stores"}


def image_meta(image: dict[str, Any]) -> ImageMeta:
    """ImageMeta from an image record as the image API shows it (properties flattened)."""
    return ImageMeta(
        id=str(image["id"]), name=image.get("name"), disk_format=image.get("disk_format"),
        container_format=image.get("container_format"), size=image.get("size"),
        checksum=image.get("checksum"), os_hash_algo=image.get("os_hash_algo"),
        os_hash_value=image.get("os_hash_value"), min_disk=image.get("min_disk") or 0,
        properties={k: v for k, v in image.items() if k not in _IMAGE_NOT_PROPERTIES})


@dataclass
class InstancePayload(BusModel):
    """An instance as compute hosts see it (they have no database).

    1.3: `flavor` is a FlavorPayload part and `network_info` a list of Vif parts
    (before: plain dicts of the same keys).
    """

    VERSION: ClassVar[str] = "1.3"
    uuid: str
    display_name: str
    hostname: str
    project_id: str
    user_id: str
    image_ref: str
    flavor: FlavorPayload
    vm_state: str
    task_state: str | None
    power_state: int
    host: str | None
    node: str | None
    availability_zone: str | None
    key_data: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    key_name: str | None = None
    config_drive: bool = False
    image: dict[str, Any] | None = None  # the image record as the image API shows it
    network_info: list[Vif] = field(default_factory=list)
    ADDED: ClassVar[dict[str, str]] = {"key_name": "1.1", "config_drive": "1.1",
                                       "image": "1.1", "network_info": "1.2"}

    def guest_spec(self) -> GuestSpec:
        flavor = self.flavor
        return GuestSpec(uuid=self.uuid, name=self.display_name, hostname=self.hostname,
                         vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                         root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
                         swap_mb=flavor.swap, image_ref=self.image_ref,
                         user_data=self.user_data, key_data=self.key_data,
                         key_name=self.key_name, metadata=dict(self.metadata),
                         image=image_meta(self.image) if self.image else None,
                         config_drive=self.config_drive, project_id=self.project_id,
                         availability_zone=self.availability_zone,
                         network_info=[vif.to_dict() for vif in self.network_info])


# The InstancePayload version carried at each version of the compute RPC API (in
# requests to hosts) and of the conductor RPC API (in its replies to hosts). A
# version not in it is newer than this code: it gets the newest payload.
INSTANCE_VERSIONS: dict[str, dict[str, str]] = {
    "compute": {"1.0": "1.2", "1.1": "1.2", "1.2": "1.3", "1.3": "1.3", "1.4": "1.3",
                "1.5": "1.3", "1.6": "1.3"},
    "conductor": {"1.0": "1.2", "1.1": "1.2", "1.2": "1.2", "1.3": "1.3", "1.4": "1.3",
                  "1.5": "1.3"},
}


def instance_for(api: str, rpc_version: str, instance: dict[str, Any]) -> dict[str, Any]:
    """An instance (an InstancePayload dict) as version `rpc_version` of the `api`
    RPC API (compute, conductor) carries it."""
    return InstancePayload.from_dict(instance).to_dict(
        INSTANCE_VERSIONS[api].get(rpc_version, InstancePayload.VERSION))


@dataclass
class RequestSpec(BusModel):
    """What the scheduler needs to place one build request of N instances.

    1.2: `group` is a SchedulingGroup part (before: a plain dict of the same keys);
    `group_generation` added.
    """

    VERSION: ClassVar[str] = "1.2"
    instance_uuids: list[str]
    project_id: str
    user_id: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    availability_zone: str | None = None
    force_host: str | None = None
    force_node: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    extra_specs: dict[str, str] = field(default_factory=dict)
    # The server group of the `group` hint.
    group: SchedulingGroup | None = None
    # Filled by the scheduler as it schedules: {host: group members claimed there}
    # (this request's own instances count as they are placed), and the hosts of the
    # instances the different_host / same_host hints name.
    group_hosts: dict[str, int] = field(default_factory=dict)
    hinted_hosts: dict[str, list[str]] = field(default_factory=dict)
    # Filled by the scheduler too: the group's generation when it read group_hosts,
    # which its claims compare and bump (before 1.2, a "generation" key it added to
    # the group dict; senders leave it None).
    group_generation: int | None = None
    ADDED: ClassVar[dict[str, str]] = {"group": "1.1", "group_hosts": "1.1",
                                       "hinted_hosts": "1.1", "group_generation": "1.2"}

    @property
    def resources(self) -> dict[str, int]:
        return {"VCPU": self.vcpus, "MEMORY_MB": self.memory_mb, "DISK_GB": self.disk_gb}


@dataclass
class Destination(BusModel):
    """Where the scheduler placed (and claimed for) one instance."""

    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    host: str
    node: str | None
    availability_zone: str | None = None


@dataclass
class ComputeNodePayload(BusModel):
    """A node's hypervisor facts, as its host reports them for os-hypervisors, and its
    virt driver's capabilities (DriverCapabilities.to_dict) for the API's checks."""

    VERSION: ClassVar[str] = "1.1"
    uuid: str
    host: str
    hypervisor_hostname: str
    hypervisor_type: str
    hypervisor_version: int = 0
    host_ip: str | None = None
    cpu_info: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)
    ADDED: ClassVar[dict[str, str]] = {"capabilities": "1.1"}


@dataclass
class ExternalEvent(BusModel):
    """An event another service reports for an instance (os-server-external-events)."""

    VERSION: ClassVar[str] = "1.0"
    name: str
    server_uuid: str
    tag: str | None = None
    status: str = "completed"


@dataclass
class Inventory(BusModel):
    """One resource class of a node, as its host reports it for placement."""

    VERSION: ClassVar[str] = "1.0"
    total: int
    reserved: int = 0
    allocation_ratio: float = 1.0

    def as_list(self) -> list[float]:
        """As conductor RPC 1.0 and 1.1 carried it: [total, reserved, ratio]."""
        return [self.total, self.reserved, self.allocation_ratio]

    @classmethod
    def from_report(cls, value: Any) -> Inventory:
        """From an Inventory model (conductor RPC 1.2) or the [total, reserved, ratio]
        list of 1.0 and 1.1; refused (400) unless the numbers are sane."""
        if isinstance(value, dict):
            inv = cls.from_dict(value)
        elif isinstance(value, list) and len(value) == 3:
            inv = cls(*value)
        else:
            raise InvalidInventory(reason=f"not an inventory: {value!r}")
        numbers = (inv.total, inv.reserved, inv.allocation_ratio)
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool)
                   for n in numbers) or inv.total < 0 or inv.reserved < 0 or \
                inv.allocation_ratio <= 0:
            raise InvalidInventory(reason=f"bad numbers in {value!r}")
        return cls(int(inv.total), int(inv.reserved), float(inv.allocation_ratio))


class InvalidInventory(exceptions.Invalid):
    msg_fmt = "Inventory refused: %(reason)s"
