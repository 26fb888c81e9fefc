"""Typed, versioned models of what crosses the bus for compute work.

Bump a model's VERSION whenever its fields change; tests/unit/compute/
test_payloads.py fails until the recorded fingerprint is updated with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from novalet.virt.driver import GuestSpec


@dataclass
class InstancePayload:
    """An instance as compute hosts see it (they have no database)."""

    VERSION: ClassVar[str] = "1.0"
    uuid: str
    display_name: str
    hostname: str
    project_id: str
    user_id: str
    image_ref: str
    flavor: dict[str, Any]
    vm_state: str
    task_state: str | None
    power_state: int
    host: str | None
    node: str | None
    availability_zone: str | None
    key_data: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "_version": self.VERSION}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstancePayload:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    def guest_spec(self) -> GuestSpec:
        flavor = self.flavor
        return GuestSpec(uuid=self.uuid, name=self.display_name, hostname=self.hostname,
                         vcpus=flavor["vcpus"], memory_mb=flavor["memory_mb"],
                         root_gb=flavor["root_gb"], ephemeral_gb=flavor["ephemeral_gb"],
                         swap_mb=flavor["swap"], image_ref=self.image_ref,
                         user_data=self.user_data, key_data=self.key_data,
                         metadata=dict(self.metadata))


@dataclass
class RequestSpec:
    """What the scheduler needs to place one build request of N instances."""

    VERSION: ClassVar[str] = "1.0"
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

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "_version": self.VERSION}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestSpec:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    @property
    def resources(self) -> dict[str, int]:
        return {"VCPU": self.vcpus, "MEMORY_MB": self.memory_mb, "DISK_GB": self.disk_gb}
