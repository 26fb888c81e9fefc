"""Services, endpoints and regions: read-only views of the catalog built from configuration.

The catalog is not stored, so there is nothing to create, change or delete here.
"""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.handler import ApiRequest
from novalet.api.identity import access, views


class ServiceNotFound(exceptions.NotFound):
    msg_fmt = "Could not find service: %(service_id)s."


class EndpointNotFound(exceptions.NotFound):
    msg_fmt = "Could not find endpoint: %(endpoint_id)s."


class RegionNotFound(exceptions.NotFound):
    msg_fmt = "Could not find region: %(region_id)s."


def _services(req: ApiRequest) -> list[dict[str, Any]]:
    base = views.base_url(req)
    return [{"id": s["id"], "type": s["type"], "name": s["name"], "enabled": True,
             "description": "", "links": {"self": f"{base}/services/{s['id']}"}}
            for s in req.app.identity.catalog(req.app.conf.public_url)]


def _endpoints(req: ApiRequest) -> list[dict[str, Any]]:
    base = views.base_url(req)
    return [{**e, "service_id": s["id"], "enabled": True,
             "links": {"self": f"{base}/endpoints/{e['id']}"}}
            for s in req.app.identity.catalog(req.app.conf.public_url)
            for e in s["endpoints"]]


def _regions(req: ApiRequest) -> list[dict[str, Any]]:
    region = req.app.conf.get("identity", "region")
    return [{"id": region, "description": "", "parent_region_id": None,
             "links": {"self": f"{views.base_url(req)}/regions/{region}"}}]


def _matching(items: list[dict[str, Any]], req: ApiRequest, *keys: str
              ) -> list[dict[str, Any]]:
    """Items whose value for each key given in the query equals the query's."""
    wanted = {k: req.query[k] for k in keys if k in req.query}
    return [i for i in items if all(i[k] == v for k, v in wanted.items())]


def _one(items: list[dict[str, Any]], item_id: str, error: exceptions.NotFound
         ) -> dict[str, Any]:
    for item in items:
        if item["id"] == item_id:
            return item
    raise error


async def list_services(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/services, filtered by ?type= and ?name=."""
    access.require_admin(req)
    return views.collection(req, "services", _matching(_services(req), req, "type", "name"))


async def show_service(req: ApiRequest) -> dict[str, Any]:
    access.require_admin(req)
    service_id = req.path["service_id"]
    return {"service": _one(_services(req), service_id, ServiceNotFound(service_id=service_id))}


async def list_endpoints(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/endpoints, filtered by ?interface=, ?service_id=, ?region_id=."""
    access.require_admin(req)
    found = _matching(_endpoints(req), req, "interface", "service_id", "region_id")
    return views.collection(req, "endpoints", found)


async def show_endpoint(req: ApiRequest) -> dict[str, Any]:
    access.require_admin(req)
    endpoint_id = req.path["endpoint_id"]
    return {"endpoint": _one(_endpoints(req), endpoint_id,
                             EndpointNotFound(endpoint_id=endpoint_id))}


async def list_regions(req: ApiRequest) -> dict[str, Any]:
    access.require_token(req)
    return views.collection(req, "regions", _regions(req))


async def show_region(req: ApiRequest) -> dict[str, Any]:
    access.require_token(req)
    region_id = req.path["region_id"]
    return {"region": _one(_regions(req), region_id, RegionNotFound(region_id=region_id))}
