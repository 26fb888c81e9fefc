"""Version discovery of the network API: the version document and the resource list."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest

# Neutron's core resources served so far: (name, collection). Extension resources
# (security groups, ...) are not listed here, as in Neutron: see /v2.0/extensions.
RESOURCES = [("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("floatingip", "floatingips"), ("router", "routers")]


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /network: the one version, v2.0."""
    href = f"{req.app.conf.public_url}/network/v2.0/"
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": href}]}]}


async def resources(req: ApiRequest) -> dict[str, Any]:
    """GET /network/v2.0: the collections this API serves."""
    base = f"{req.app.conf.public_url}/network/v2.0"
    return {"resources": [
        {"name": name, "collection": collection,
         "links": [{"rel": "self", "href": f"{base}/{collection}"}]}
        for name, collection in RESOURCES]}
