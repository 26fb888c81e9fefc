"""A port's security groups across a binding (db/ports.py binds, db/network.py unbinds).

A bound port's groups are its server's (security_group_instances, nova-network's
model). Binding makes the server a member of the groups the port carries; unbinding
must take back only what the binding added, so a port attached for a while does not
widen the server's groups for good, and the port leaves with its own groups.

While bound, the port's `security_groups` column keeps its own groups, followed by
the groups its binding added to the server, each marked with ADDED. A port bound
before this record existed stores None: it leaves with its server's groups.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from novalet.db.models import SecurityGroup, SecurityGroupInstance, VirtualInterface

ADDED = "+"


def split(stored: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the port's own groups, the groups its binding added to the server)."""
    return ([g for g in stored if not g.startswith(ADDED)],
            [g[len(ADDED):] for g in stored if g.startswith(ADDED)])


def record(own: Sequence[str], added: Sequence[str]) -> list[str]:
    return [*own, *(ADDED + g for g in added)]


async def _server_groups(s: AsyncSession, instance_uuid: str) -> dict[str, int]:
    """The server's groups, uuid -> id."""
    return dict((await s.execute(select(SecurityGroup.uuid, SecurityGroup.id).join(
        SecurityGroupInstance, SecurityGroupInstance.security_group_id == SecurityGroup.id
    ).where(SecurityGroupInstance.instance_uuid == instance_uuid))).all())


async def bind(s: AsyncSession, instance_uuid: str, carried: Sequence[str]) -> list[str]:
    """Make the server a member of the carried groups (unknown ones skipped); what
    the bound port stores: record(carried, the groups the server did not have)."""
    have = await _server_groups(s, instance_uuid)
    ids = dict((await s.execute(select(SecurityGroup.uuid, SecurityGroup.id).where(
        SecurityGroup.uuid.in_(list(carried))))).all()) if carried else {}
    added = [g for g in dict.fromkeys(carried) if g in ids and g not in have]
    for group_uuid in added:
        s.add(SecurityGroupInstance(security_group_id=ids[group_uuid],
                                    instance_uuid=instance_uuid))
    return record(carried, added)


async def unbind(s: AsyncSession, vif: VirtualInterface, instance_uuid: str) -> list[str]:
    """Take back from the server the groups this port's binding added (unless another
    of its bound ports carries them too); the groups the port leaves with: its own
    ([] with port security off, which allows none)."""
    if vif.security_groups is None:  # bound before the record: the server's groups
        own = list(await _server_groups(s, instance_uuid))
    else:
        own, added = split(vif.security_groups)
        others = (await s.execute(select(VirtualInterface.security_groups).where(
            VirtualInterface.instance_uuid == instance_uuid,
            VirtualInterface.id != vif.id))).scalars()
        kept = {g for stored in others for g in split(stored or [])[0]}
        have = await _server_groups(s, instance_uuid)
        gone = [have[g] for g in added if g in have and g not in kept]
        if gone:
            await s.execute(delete(SecurityGroupInstance).where(
                SecurityGroupInstance.instance_uuid == instance_uuid,
                SecurityGroupInstance.security_group_id.in_(gone)))
    return own if vif.port_security_enabled else []
