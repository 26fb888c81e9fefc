"""Database access for compute nodes: each hypervisor's facts beside its placement
inventory, and the figures os-hypervisors shows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from novalet.db.engine import Database
from novalet.db.models import Allocation, ComputeNode, Instance, Inventory


@dataclass
class NodeUsage:
    """A node's inventory totals and what is allocated against them, per class."""

    total: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)


async def upsert(db: Database, uuid: str, host: str, hypervisor_hostname: str,
                 hypervisor_type: str, hypervisor_version: int, host_ip: str | None,
                 cpu_info: dict[str, Any],
                 capabilities: dict[str, bool] | None = None) -> ComputeNode:
    """Create the node on its host's first report, then refresh what it says. A
    node reported from a new host (a rebuilt machine) moves there, keeping its id."""
    async with db.transaction() as s:
        node = (await s.execute(select(ComputeNode).where(
            ComputeNode.hypervisor_hostname == hypervisor_hostname))).scalar_one_or_none()
        if node is None:
            node = ComputeNode(uuid=uuid, hypervisor_hostname=hypervisor_hostname)
            s.add(node)
        node.uuid = uuid
        node.host = host
        node.hypervisor_type = hypervisor_type
        node.hypervisor_version = hypervisor_version
        node.host_ip = host_ip
        node.cpu_info = json.dumps(cpu_info, sort_keys=True)
        if capabilities is not None:  # a host that reports none keeps what it had
            node.capabilities = json.dumps(capabilities, sort_keys=True)
        return node


async def capabilities_of(db: Database, host: str | None, node: str | None) -> str | None:
    """The capabilities JSON of the node `node` (a hypervisor_hostname), or else of
    the one node of `host`; None when none was reported."""
    async with db.transaction() as s:
        query = select(ComputeNode.capabilities)
        query = (query.where(ComputeNode.hypervisor_hostname == node) if node
                 else query.where(ComputeNode.host == host))
        found: str | None = (await s.execute(query.limit(1))).scalar_one_or_none()
        return found


async def list_nodes(db: Database, *, hostname_pattern: str | None = None,
                     after_id: int | None = None, limit: int | None = None
                     ) -> list[ComputeNode]:
    """Nodes by id; `hostname_pattern` matches a part of the hypervisor hostname
    (SQL LIKE with % and _ taken literally), `after_id` and `limit` page."""
    async with db.transaction() as s:
        query = select(ComputeNode).order_by(ComputeNode.id)
        if hostname_pattern is not None:
            escaped = (hostname_pattern.replace("\\", "\\\\").replace("%", "\\%")
                       .replace("_", "\\_"))
            query = query.where(ComputeNode.hypervisor_hostname.like(
                f"%{escaped}%", escape="\\"))
        if after_id is not None:
            query = query.where(ComputeNode.id > after_id)
        if limit is not None:
            query = query.limit(limit)
        return list((await s.execute(query)).scalars())


async def get_node(db: Database, key: int | str) -> ComputeNode | None:
    """A node by integer id or uuid."""
    column = ComputeNode.id if isinstance(key, int) else ComputeNode.uuid
    async with db.transaction() as s:
        node: ComputeNode | None = (await s.execute(
            select(ComputeNode).where(column == key))).scalar_one_or_none()
        return node


async def usage_by_provider(db: Database, uuids: list[str]) -> dict[str, NodeUsage]:
    """Inventory and allocation sums of the providers `uuids` (one query each)."""
    result = {u: NodeUsage() for u in uuids}
    if not uuids:
        return result
    async with db.transaction() as s:
        rows = await s.execute(select(Inventory.provider_uuid, Inventory.resource_class,
                                      Inventory.total, Inventory.reserved)
                               .where(Inventory.provider_uuid.in_(uuids)))
        for provider, rc, total, reserved in rows:
            result[provider].total[rc] = int(total)
            result[provider].reserved[rc] = int(reserved)
        rows = await s.execute(select(Allocation.provider_uuid, Allocation.resource_class,
                                      func.sum(Allocation.used))
                               .where(Allocation.provider_uuid.in_(uuids))
                               .group_by(Allocation.provider_uuid, Allocation.resource_class))
        for row in rows:
            result[row[0]].used[row[1]] = int(row[2])
    return result


@dataclass(frozen=True)
class NodeInstance:
    id: int
    uuid: str
    node: str
    task_state: str | None


async def instances_on_nodes(db: Database, nodes: list[str]) -> list[NodeInstance]:
    """The live (not deleted) instances on the named nodes, oldest first."""
    if not nodes:
        return []
    async with db.transaction() as s:
        rows = await s.execute(select(Instance.id, Instance.uuid, Instance.node,
                                      Instance.task_state)
                               .where(Instance.node.in_(nodes), Instance.deleted.is_(False))
                               .order_by(Instance.id))
        return [NodeInstance(i, u, n or "", t) for i, u, n, t in rows]


def parsed_cpu_info(node: ComputeNode) -> dict[str, Any]:
    try:
        value = json.loads(node.cpu_info or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

