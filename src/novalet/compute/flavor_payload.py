"""The flavor an instance was built or resized with, as it crosses the bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from novalet.rpc.models import BusModel


@dataclass
class FlavorPayload(BusModel):
    """An instance's copy of its flavor (compute/api.flavor_document: later edits
    of the flavor don't change it): a part of InstancePayload and InstanceChanges,
    and resize's new and old flavor. Before it (InstancePayload 1.2, compute RPC
    1.1, conductor RPC 1.2) the same keys travelled as a plain dict, which
    `from_dict` reads as 1.0 and `to_dict(tagged=False)` gives back."""

    VERSION: ClassVar[str] = "1.0"
    CHECKED: ClassVar[bool] = True  # hosts write it back (resize, revert)
    flavorid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int
    swap: int
    rxtx_factor: float = 1.0
    extra_specs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, flavor: FlavorPayload | dict[str, Any]) -> FlavorPayload:
        """A flavor document (an instance row's `flavor`, or one of a previous
        release's messages) as the model; a model as it is."""
        return flavor if isinstance(flavor, FlavorPayload) else cls.from_dict(flavor)
