"""The network API's one route table (Neutron v2.0 subset, mounted at /network).
Unknown paths and methods answer 404 and 405 in Neutron's error body (api/app.py)."""

from __future__ import annotations

from starlette.routing import Route

from novalet.api.handler import NETWORK, Handler, endpoint
from novalet.api.network import (auto_topology, extensions, floatingips, networks, ports,
                                 security_groups, subnets, versions)


def _r(path: str, methods: list[str], handler: Handler, auth: bool = True) -> Route:
    return Route(path, endpoint(NETWORK, handler, auth=auth), methods=methods)


V = "/v2.0"
NET = V + "/networks/{network_id}"
SUBNET = V + "/subnets/{subnet_id}"
SG = V + "/security-groups"
SGR = V + "/security-group-rules"
PORT = V + "/ports/{port_id}"
ROUTES = [
    _r("/", ["GET"], versions.index, auth=False),
    _r(V, ["GET"], versions.resources),
    _r(V + "/", ["GET"], versions.resources),
    _r(V + "/extensions", ["GET"], extensions.index),
    _r(V + "/extensions/{alias}", ["GET"], extensions.show),
    _r(V + "/networks", ["GET"], networks.index),
    _r(V + "/networks", ["POST"], networks.create),
    _r(NET, ["GET"], networks.show),
    _r(NET, ["PUT"], networks.update),
    _r(NET, ["DELETE"], networks.delete),
    _r(V + "/subnets", ["GET"], subnets.index),
    _r(V + "/subnets", ["POST"], subnets.create),
    _r(SUBNET, ["GET"], subnets.show),
    _r(SUBNET, ["PUT"], subnets.update),
    _r(SUBNET, ["DELETE"], subnets.delete),
    _r(SG, ["GET"], security_groups.index_groups),
    _r(SG, ["POST"], security_groups.create_group),
    _r(SG + "/{group_id}", ["GET"], security_groups.show_group),
    _r(SG + "/{group_id}", ["PUT"], security_groups.update_group),
    _r(SG + "/{group_id}", ["DELETE"], security_groups.delete_group),
    _r(SGR, ["GET"], security_groups.index_rules),
    _r(SGR, ["POST"], security_groups.create_rule),
    _r(SGR + "/{rule_id}", ["GET"], security_groups.show_rule),
    _r(SGR + "/{rule_id}", ["DELETE"], security_groups.delete_rule),
    _r(V + "/ports", ["GET"], ports.index),
    _r(V + "/ports", ["POST"], ports.create),
    _r(PORT, ["GET"], ports.show),
    _r(PORT, ["PUT"], ports.update),
    _r(PORT, ["DELETE"], ports.delete),
    # floating IPs (api/network/floatingips.py)
    _r(V + "/floatingips", ["GET"], floatingips.index),
    _r(V + "/floatingips", ["POST"], floatingips.create),
    _r(V + "/floatingips/{floatingip_id}", ["GET"], floatingips.show),
    _r(V + "/floatingips/{floatingip_id}", ["PUT"], floatingips.update),
    _r(V + "/floatingips/{floatingip_id}", ["DELETE"], floatingips.delete),
    # get-me-a-network (api/network/auto_topology.py)
    _r(V + "/auto-allocated-topology/{project_id}", ["GET"], auto_topology.show),
    _r(V + "/auto-allocated-topology/{project_id}", ["DELETE"], auto_topology.delete),
]
