"""The same-hypervisor rule of moves: a server moves (migrate, resize, live
migration, evacuate, unshelve) only to hosts whose hypervisor type is that of the
host it is on, or was shelved from. A QEMU guest's disks and memory mean nothing
to a fake host or a container host, and the other way round.

The scheduler leaves hosts of another type out of a move's candidates, and a host
asked for by name that breaks the rule is refused (NoValidHost, a 400 for the
moves the API waits on) saying why; the conductor checks forced moves (claimed
without the scheduler) here too. A new server has no such host: anything goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from novalet import exceptions
from novalet.db import compute_nodes, instances
from novalet.db.engine import Database


@dataclass(frozen=True)
class HypervisorRule:
    """Where a server may go: hosts of `hypervisor_type` (its host `source`'s)."""

    instance_uuid: str
    source: str
    hypervisor_type: str
    types: dict[str, str]  # every host's hypervisor type

    def allows(self, host: str) -> bool:
        """A host with no compute node yet has no type: it may be tried."""
        return self.types.get(host, self.hypervisor_type) == self.hypervisor_type

    def refusal(self, host: str) -> str:
        return (f"Host {host} runs {self.types.get(host)} guests and server "
                f"{self.instance_uuid}'s host {self.source} runs {self.hypervisor_type} "
                f"guests: a server moves only between hosts of one hypervisor type.")

    def none_left(self) -> str:
        return (f"No other host runs {self.hypervisor_type} guests, as server "
                f"{self.instance_uuid}'s host {self.source} does (a server moves only "
                f"between hosts of one hypervisor type).")


async def rule_for(db: Database, instance_uuid: str) -> HypervisorRule | None:
    """The rule for moving `instance_uuid`; None for a server on no host (being
    built) or on a host whose type is unknown."""
    try:
        instance = await instances.get(db, instance_uuid)
    except exceptions.NotFound:
        return None
    source = instance.host or (instance.system_metadata or {}).get("shelved_host")
    if not source:
        return None
    types = {node.host: node.hypervisor_type for node in await compute_nodes.list_nodes(db)}
    if source not in types:
        return None
    return HypervisorRule(instance_uuid, str(source), types[source], types)
