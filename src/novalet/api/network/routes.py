"""The network API's one route table (Neutron v2.0 subset, mounted at /network).
Unknown paths and methods answer 404 and 405 in Neutron's error body (api/app.py)."""

from __future__ import annotations

from starlette.routing import Route

from novalet.api.handler import NETWORK, Handler, endpoint
from novalet.api.network import extensions, floatingips, networks, versions


def _r(path: str, methods: list[str], handler: Handler, auth: bool = True) -> Route:
    return Route(path, endpoint(NETWORK, handler, auth=auth), methods=methods)


V = "/v2.0"
NET = V + "/networks/{network_id}"
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
    # floating IPs (api/network/floatingips.py)
    _r(V + "/floatingips", ["GET"], floatingips.index),
    _r(V + "/floatingips", ["POST"], floatingips.create),
    _r(V + "/floatingips/{floatingip_id}", ["GET"], floatingips.show),
    _r(V + "/floatingips/{floatingip_id}", ["PUT"], floatingips.update),
    _r(V + "/floatingips/{floatingip_id}", ["DELETE"], floatingips.delete),
]
