"""What the conductor serves a compute host: its own instances and node only.

DESIGN.md promises a compromised host cannot read other tenants' records. A
host's only way to the database is the conductor, and every message names the
bus user that sent it (rpc/bus.CallInfo.sender: the AMQP user-id, which
RabbitMQ checks against the publishing connection's user). A user that is a
compute host's (rpc/identity.py: `compute-<host>` or `[conductor] host_users`)
is served:

- calls about an instance (by uuid) only for instances whose host is that
  host, or with a move (resize, migration) under way from or to it; never for
  the failed source of an evacuation under way (the instance is being recreated
  elsewhere, even while it still names that host);
- calls about a host or node only for that host;
- nothing else (the build flow and console checks are the API's and the
  proxies'); a method not in RULES is refused to hosts.

Other users are the cloud's own services and are served everything; so are
in-process messages without an identity (the process trusts itself). Which
host a sender is, and the refusal of broker messages without a user-id (unless
`[conductor] trust_unidentified_senders`), are the bus's (rpc/identity.Senders,
rpc/bus.dispatch): this module sees CallInfo.host. Of the instance fields, a
host may write only those its own work changes (WRITABLE; the flavor only
during a same-host resize on it, the one path where a host still writes it: a
conductor of the previous release's resize_instance/revert_resize; the
conductor's move tasks write flavors themselves). A live migration's progress
comes only from that migration's source host. An instance that does not exist
is refused as one of another host's is, so a host cannot probe for uuids.
Refusals are NotAuthorizedForHost (403) and are logged.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import or_, select

from novalet.compute.instance_changes import given_fields
from novalet.conductor.rpcapi import InstanceNotServed
from novalet.db import migrations_records
from novalet.db.engine import Database
from novalet.db.models import ComputeNode, Instance, ResourceProvider
from novalet.rpc.bus import CallInfo, NotAuthorizedForHost
from novalet.rpc.identity import UNIDENTIFIED_HOST

LOG = logging.getLogger(__name__)

# method -> (what its argument names, the argument): "instance" an instance uuid,
# "report" a model whose instance_uuid names the instance,
# "host" a host name, "provider" a host name and (argument `uuid`) a resource
# provider that is new or already that host's, "node" a ComputeNodePayload whose
# host is checked, and whose uuid and hypervisor_hostname are new or that host's.
RULES: dict[str, tuple[str, str]] = {
    "instance_update": ("instance", "uuid"),
    "record_power_change": ("instance", "uuid"),
    "instance_destroy": ("instance", "uuid"),
    "event_start": ("instance", "uuid"),
    "event_finish": ("instance", "uuid"),
    "add_fault": ("instance", "uuid"),
    "remove_allocations": ("instance", "uuid"),
    "migration_update": ("instance", "instance_uuid"),
    "migration_progress": ("report", "report"),
    "instances_on_host": ("host", "host"),
    "service_heartbeat": ("host", "host"),
    "update_provider": ("provider", "host"),
    "instance_usage_audit": ("host", "host"),
    "network_host_state": ("host", "host"),
    "compute_node_update": ("node", "node"),
    # the guests evacuated off the host while it was down, for it to destroy (1.5)
    "evacuated_instances": ("host", "host"),
    "evacuation_cleaned": ("host", "host"),
}
# The instance fields a host may write, per method taking `values` (what compute's
# own work changes: states and launch time; nothing about who owns the instance,
# where it is, whether it is deleted or what it is billed as). "flavor" only during
# a same-host resize in progress on the host (the compute manager's legacy 1.0
# resize_instance writes the new one, revert_resize the old).
# `values` is an InstanceChanges (compute/instance_changes.py), whose model types
# and checks every field any sender may write; this table is authorisation: which
# of those fields each method lets a host write.
WRITABLE: dict[str, frozenset[str]] = {
    "instance_update": frozenset({"vm_state", "task_state", "power_state",
                                  "launched_at", "flavor"}),
    "record_power_change": frozenset({"vm_state", "power_state"}),
}
MOVE_ONLY_FIELDS = frozenset({"flavor"})
# Migration statuses in which both ends of the move work on the instance.
_MOVING = (*migrations_records.IN_PROGRESS, "finished")
# Statuses of an evacuation under way: its (failed) source has lost the instance.
_EVACUATING = ("accepted", *migrations_records.IN_PROGRESS)


def _evacuating_away(move: Any, host: str) -> bool:
    """Whether `move` is an evacuation off `host` still under way: a host back
    from the dead must not write an instance being recreated elsewhere."""
    return (move.migration_type == "evacuation" and move.source_compute == host
            and move.status in _EVACUATING)


class HostAccess:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def allows(method: str) -> bool:
        """Whether a host may call `method` at all (then check() looks at its args)."""
        return method in RULES

    async def check(self, call: CallInfo, args: dict[str, Any]) -> None:
        """Raise NotAuthorizedForHost unless the sender may make this call."""
        host = call.host
        if host is None:
            return
        rule = RULES.get(call.method)
        target = "this conductor"
        if rule is not None and host != UNIDENTIFIED_HOST:
            kind, arg = rule
            value = args.get(arg)
            if kind in ("host", "provider"):
                target = f"host {value}"
                if value == host and (kind == "host" or await self._provider_free(
                        host, str(args.get("uuid")))):
                    return
            elif kind == "node":
                node = value if isinstance(value, dict) else {}
                target = f"node of host {node.get('host', '?')}"
                if node.get("host") == host and await self._node_free(host, node):
                    return
            else:
                report = value if kind == "report" and isinstance(value, dict) else None
                if kind == "report":  # a model naming its instance (a ProgressReport)
                    value = report.get("instance_uuid") if report else None
                target = f"instance {value}"
                if (report is None or await self._reports_on(host, report)) and \
                        await self._instance_allowed(host, str(value), call, args):
                    return
        LOG.warning("Refused %s on %s from bus user %s (host %s)", call.method, target,
                    call.sender or "(none)", host)
        refusal = InstanceNotServed if rule is not None and rule[0] in ("instance", "report") \
            else NotAuthorizedForHost
        raise refusal(sender=call.sender or "(none)", host=host,
                                   method=call.method, target=target)

    async def _reports_on(self, host: str, report: dict[str, Any]) -> bool:
        """Whether the report's migration is of its instance and leaves from `host`
        (the destination has no progress to report)."""
        record = await migrations_records.get(self.db, str(report.get("migration_uuid")))
        return record is not None and record.source_compute == host and \
            record.instance_uuid == report.get("instance_uuid")

    async def _provider_free(self, host: str, uuid: str) -> bool:
        """Whether resource provider `uuid` is new or already `host`'s."""
        async with self.db.transaction() as session:
            owner = (await session.execute(select(ResourceProvider.host).where(
                ResourceProvider.uuid == uuid))).first()
        return owner is None or owner.host == host

    async def _node_free(self, host: str, node: dict[str, Any]) -> bool:
        """Whether the compute node (by uuid or hypervisor name) is new or `host`'s."""
        async with self.db.transaction() as session:
            owners = (await session.execute(select(ComputeNode.host).where(or_(
                ComputeNode.uuid == str(node.get("uuid")),
                ComputeNode.hypervisor_hostname == str(node.get(
                    "hypervisor_hostname")))))).all()
        return all(owner.host == host for owner in owners)

    async def _instance_allowed(self, host: str, uuid: str, call: CallInfo,
                                args: dict[str, Any]) -> bool:
        """Whether `host` may make the call on instance `uuid`: its own or moving
        from or to it, writing only WRITABLE fields. An unknown uuid is refused
        like another host's (no 404 telling the host which uuids exist)."""
        fields: set[str] = set()
        if call.method in WRITABLE:
            values = args.get("values")
            if not isinstance(values, dict):
                return False
            fields = set(given_fields(values))
            if not fields <= WRITABLE[call.method]:
                return False
        async with self.db.transaction() as session:  # one column, not the whole row
            found = (await session.execute(
                select(Instance.host).where(Instance.uuid == uuid))).first()
        if found is None:
            return False
        moves = [m for m in await migrations_records.list_migrations(
            self.db, migrations_records.MigrationQuery(instance_uuid=uuid))
            if host in (m.dest_compute, m.source_compute)]
        if fields & MOVE_ONLY_FIELDS and not any(
                m.status in migrations_records.IN_PROGRESS and m.migration_type == "resize"
                and m.source_compute == m.dest_compute == host for m in moves):
            return False
        if any(_evacuating_away(m, host) for m in moves):
            return False
        return found.host == host or any(m.status in _MOVING for m in moves)
