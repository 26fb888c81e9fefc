"""Database access for what runs on one host: its live instances' owners and sizes
(os-hosts shows them summed, in total and per project)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from novalet.db.engine import Database
from novalet.db.models import Instance


@dataclass(frozen=True)
class InstanceSize:
    project_id: str
    vcpus: int
    memory_mb: int
    disk_gb: int  # root plus ephemeral


async def sizes_on_host(db: Database, host: str) -> list[InstanceSize]:
    """The live (not deleted) instances whose host is `host`, oldest first."""
    async with db.transaction() as s:
        rows = await s.execute(select(Instance.project_id, Instance.flavor)
                               .where(Instance.host == host, Instance.deleted.is_(False))
                               .order_by(Instance.id))
        return [_size(project_id, flavor or {}) for project_id, flavor in rows]


def _size(project_id: str, flavor: dict[str, object]) -> InstanceSize:
    def number(key: str) -> int:
        value = flavor.get(key) or 0
        return int(value) if isinstance(value, (int, float, str)) else 0
    return InstanceSize(project_id, number("vcpus"), number("memory_mb"),
                        number("root_gb") + number("ephemeral_gb"))
