"""The network API's one route table (Neutron v2.0 subset, mounted at /network).
Unknown paths and methods answer 404 and 405 in Neutron's error body (api/app.py)."""

from __future__ import annotations

from starlette.routing import Route

from novalet.api.handler import NETWORK, Handler, endpoint
from novalet.api.network import (auto_topology, extensions, floatingips, networks, ports,
                                 routers, security_groups, subnets, versions)
from novalet.api.network import ip_availability, quotas, tags


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
    # routers (api/network/routers.py)
    _r(V + "/routers", ["GET"], routers.index),
    _r(V + "/routers", ["POST"], routers.create),
    _r(V + "/routers/{router_id}", ["GET"], routers.show),
    _r(V + "/routers/{router_id}", ["PUT"], routers.update),
    _r(V + "/routers/{router_id}", ["DELETE"], routers.delete),
    _r(V + "/routers/{router_id}/add_router_interface", ["PUT"], routers.add_interface),
    _r(V + "/routers/{router_id}/remove_router_interface", ["PUT"],
       routers.remove_interface),
    # quotas (api/network/quotas.py)
    _r(V + "/quotas", ["GET"], quotas.index),
    _r(V + "/quotas/{project_id}", ["GET"], quotas.show),
    _r(V + "/quotas/{project_id}", ["PUT"], quotas.update),
    _r(V + "/quotas/{project_id}", ["DELETE"], quotas.delete),
    _r(V + "/quotas/{project_id}/default", ["GET"], quotas.defaults),
    _r(V + "/quotas/{project_id}/details", ["GET"], quotas.details),
    # IP availability (api/network/ip_availability.py)
    _r(V + "/network-ip-availabilities", ["GET"], ip_availability.index),
    _r(V + "/network-ip-availabilities/{network_id}", ["GET"], ip_availability.show),
    # tags of any collection network/tags.py knows (api/network/tags.py)
    _r(V + "/{kind}/{resource_id}/tags", ["GET"], tags.index),
    _r(V + "/{kind}/{resource_id}/tags", ["PUT"], tags.replace),
    _r(V + "/{kind}/{resource_id}/tags", ["DELETE"], tags.delete_all),
    _r(V + "/{kind}/{resource_id}/tags/{tag}", ["GET"], tags.show),
    _r(V + "/{kind}/{resource_id}/tags/{tag}", ["PUT"], tags.add),
    _r(V + "/{kind}/{resource_id}/tags/{tag}", ["DELETE"], tags.delete),
    # get-me-a-network (api/network/auto_topology.py)
    _r(V + "/auto-allocated-topology/{project_id}", ["GET"], auto_topology.show),
    _r(V + "/auto-allocated-topology/{project_id}", ["DELETE"], auto_topology.delete),
]
