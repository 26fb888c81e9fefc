"""What the conductor serves a compute host: its own instances and node only.

DESIGN.md promises a compromised host cannot read other tenants' records. A
host's only way to the database is the conductor, and every message names the
bus user that sent it (rpc/bus.CallInfo.sender: the AMQP user-id, which
RabbitMQ checks against the publishing connection's user). A user that is a
compute host's (rpc/identity.py: `compute-<host>` or `[conductor] host_users`)
is served:

- calls about an instance (by uuid) only for instances whose host is that
  host, or with a move (resize, migration) under way from or to it;
- calls about a host or node only for that host;
- nothing else (the build flow and console checks are the API's and the
  proxies'); a method not in RULES is refused to hosts.

Other users are the cloud's own services and are served everything; so are
in-process messages without an identity (the process trusts itself). A broker
message with no user-id at all is refused unless `[conductor]
trust_unidentified_senders` (for upgrades from releases before identities).
Refusals are NotAuthorizedForHost (403) and are logged.
"""

from __future__ import annotations

import logging
from typing import Any

from novalet import config
from novalet.common.context import RequestContext
from sqlalchemy import or_, select

from novalet.db import instances, migrations_records
from novalet.db.engine import Database
from novalet.db.models import ComputeNode, Instance, ResourceProvider
from novalet.rpc import identity
from novalet.rpc.bus import UNIDENTIFIED, CallInfo, NotAuthorizedForHost

LOG = logging.getLogger(__name__)

# method -> (what its argument names, the argument): "instance" an instance uuid,
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
    "instances_on_host": ("host", "host"),
    "service_heartbeat": ("host", "host"),
    "update_provider": ("provider", "host"),
    "instance_usage_audit": ("host", "host"),
    "network_host_state": ("host", "host"),
    "compute_node_update": ("node", "node"),
}
# Fields of an instance no host may change (who owns it, where it is).
PROTECTED_FIELDS = frozenset({"uuid", "project_id", "user_id", "host", "node"})
# Migration statuses in which both ends of the move work on the instance.
_MOVING = (*migrations_records.IN_PROGRESS, "finished")


class HostAccess:
    def __init__(self, conf: config.Config, db: Database) -> None:
        self.db = db
        self.host_users = identity.parse_host_users(conf.get("conductor", "host_users"))
        self.trust_unidentified = bool(conf.get("conductor", "trust_unidentified_senders"))

    def host_of(self, sender: str | None) -> str | None:
        """The compute host a sender is, or None for a trusted service."""
        if sender is None:
            return None
        if sender == UNIDENTIFIED:
            return None if self.trust_unidentified else "(unidentified)"
        return identity.host_of_user(sender, self.host_users)

    async def check(self, ctx: RequestContext, call: CallInfo, args: dict[str, Any]) -> None:
        """Raise NotAuthorizedForHost unless the sender may make this call."""
        host = self.host_of(call.sender)
        if host is None:
            return
        rule = RULES.get(call.method)
        target = "this conductor"
        if rule is not None and call.sender != UNIDENTIFIED:
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
                target = f"instance {value}"
                if await self._instance_allowed(host, str(value), call, args):
                    return
        LOG.warning("Refused %s on %s from bus user %s (host %s)", call.method, target,
                    call.sender or "(none)", host)
        raise NotAuthorizedForHost(sender=call.sender or "(none)", host=host,
                                   method=call.method, target=target)

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
        values = args.get("values")
        if isinstance(values, dict) and PROTECTED_FIELDS & set(values):
            return False
        async with self.db.transaction() as session:  # one column, not the whole row
            found = (await session.execute(
                select(Instance.host).where(Instance.uuid == uuid))).first()
        if found is None:  # no instance at all: the 404 the call itself would give
            raise instances.InstanceNotFound(instance_id=uuid)
        if found.host == host:
            return True
        moves = await migrations_records.list_migrations(
            self.db, migrations_records.MigrationQuery(instance_uuid=uuid))
        return any(m.status in _MOVING and host in (m.dest_compute, m.source_compute)
                   for m in moves)
