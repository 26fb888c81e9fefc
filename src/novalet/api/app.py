"""The ASGI application: one route table per front-end, mounted under one server."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from novalet import policy
from novalet.api import errors
from novalet.api.compute import routes as compute_routes
from novalet.api.edge import EdgeLimits
from novalet.api.handler import IMAGE, NETWORK, endpoint, json_response
from novalet.api.identity import routes as identity_routes
from novalet.api.image import routes as image_routes
from novalet.api.image import versions as image_versions
from novalet.api.network import routes as network_routes
from novalet.api.network import versions as network_versions


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    formatter = errors.formatter_for(request.url.path)
    message = {404: "The resource could not be found.",
               405: "The method is not allowed for this resource."}.get(
        exc.status_code, exc.detail)
    return json_response(formatter(exc.status_code, message), exc.status_code)


async def _root(request: Request) -> Response:
    base = request.app.state.cloud.conf.public_url
    return json_response({"services": {
        "identity": f"{base}/identity/v3", "compute": f"{base}/compute/v2.1",
        "image": f"{base}/image", "network": f"{base}/network"}})


def build_app(cloud: Any) -> Starlette:
    """`cloud` is the ApiServices the handlers reach as req.app. Reads the policy
    file (PolicyFileError, naming file and line, when it is bad)."""
    conf = cloud.conf
    policy.configure(policy.policy_file_path(conf.get("oslo_policy", "policy_file"),
                                             conf.state_path))
    app = Starlette(routes=[
        Route("/", _root),
        Mount("/identity", routes=identity_routes.ROUTES),
        Mount("/compute", routes=compute_routes.ROUTES + compute_routes.LEGACY_V2_ROUTES),
        Route("/image", endpoint(IMAGE, image_versions.index, auth=False)),
        Mount("/image", routes=image_routes.ROUTES),
        Route("/network", endpoint(NETWORK, network_versions.index, auth=False)),
        Mount("/network", routes=network_routes.ROUTES),
    ], exception_handlers={HTTPException: _http_error},
        middleware=[Middleware(EdgeLimits, max_body=conf.get("oslo_middleware",
                                                             "max_request_body_size"))])
    app.state.cloud = cloud
    return app
