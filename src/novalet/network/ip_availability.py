"""Network IP availability (Neutron's `network-ip-availability`): how many of each
network's addresses are handed out, for admins (rule `get_network_ip_availability`)."""

from __future__ import annotations

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import ip_availability as db
from novalet.db.engine import Database
from novalet.db.ip_availability import Availability


class NetworkNotFound(exceptions.NotFound):
    neutron_type = "NetworkNotFound"
    msg_fmt = "Network %(net_id)s could not be found."


class IpAvailabilityService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def list_availability(self, ctx: RequestContext) -> list[Availability]:
        policy.enforce(ctx, "get_network_ip_availability", "")  # every project's: admin
        return await db.list_availability(self.db)

    async def get_availability(self, ctx: RequestContext, network_id: str) -> Availability:
        policy.enforce(ctx, "get_network_ip_availability", "")
        found = [a for a in await db.list_availability(self.db)
                 if a.network_uuid == network_id]
        if not found:
            raise NetworkNotFound(net_id=network_id)
        return found[0]
