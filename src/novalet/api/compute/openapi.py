"""The compute API's OpenAPI 3.1 document, generated from the live route table and
the schemas each handler declares with @accepts (api/validation.py)."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

from novalet.api.compute import microversions
from novalet.api.handler import ApiRequest
from novalet.api.validation import Declared, accepts, declared, resolve

_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_ERROR = {"type": "object", "minProperties": 1, "maxProperties": 1,
          "additionalProperties": {
              "type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}}


class Undeclared(Exception):
    """A route whose handler declares no schemas."""


def handler_of(route: Route) -> Any:
    """The handler behind a Starlette route built by handler.endpoint."""
    return getattr(route.endpoint, "handler", route.endpoint)


def build(routes: list[Any], version: microversions.APIVersion = microversions.MAX,
          prefix: str = "/compute") -> dict[str, Any]:
    """The document of `routes` (mounted at `prefix`) at one microversion: each
    operation's query parameters and request body are the schemas its handler
    declares for that version. Undeclared handlers appear without them and are
    listed under x-undeclared (a test keeps that list empty)."""
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    undeclared: list[str] = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        handler = handler_of(route)
        info = declared(handler)
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            if info is None:
                undeclared.append(f"{method} {route.path}")
            operation = _operation(route, handler, info or Declared(), version, used_ids)
            paths.setdefault(route.path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Novalet Compute API", "version": str(version),
                 "description": "OpenStack Compute (Nova) API v2.1 as Novalet serves it, "
                                f"at microversion {version} (send "
                                f"'OpenStack-API-Version: compute {version}')."},
        "servers": [{"url": prefix}],
        "paths": paths,
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header",
                                          "name": "X-Auth-Token"}},
            "schemas": {"Error": _ERROR}},
        "security": [{"token": []}],
        "x-undeclared": undeclared,
    }


def _operation(route: Route, handler: Any, info: Declared,
               version: microversions.APIVersion, used_ids: set[str]) -> dict[str, Any]:
    module = handler.__module__.rsplit(".", 1)[-1]
    operation_id = f"{module}.{handler.__name__}"
    suffix = 2
    while operation_id in used_ids:
        operation_id = f"{module}.{handler.__name__}_{suffix}"
        suffix += 1
    used_ids.add(operation_id)
    doc = (handler.__doc__ or "").strip()
    operation: dict[str, Any] = {
        "operationId": operation_id, "summary": doc.split("\n", 1)[0] or operation_id,
        "tags": [module],
        "parameters": [{"name": name, "in": "path", "required": True,
                        "schema": {"type": "string"}} for name in _PARAM.findall(route.path)],
        "responses": {
            "default": {"description": "The result, or an error in Nova's shape",
                        "content": {"application/json": {"schema": {}}}}},
    }
    query = resolve(info.query, version.at_least)
    for name, schema in (query or {}).get("properties", {}).items():
        operation["parameters"].append({"name": name, "in": "query", "required": False,
                                        "schema": schema})
    body = _body(info, version)
    if body is not None:
        operation["requestBody"] = {"required": not info.body_optional, "content": {
            "application/json": {"schema": body}}}
    if getattr(route.endpoint, "auth", True) is False:
        operation["security"] = []
    return operation


def _body(info: Declared, version: microversions.APIVersion) -> dict[str, Any] | None:
    if info.actions:
        # An action resource: one key names the action, its value is that action's body.
        return {"anyOf": [
            {"type": "object", "properties": {key: resolve(spec, version.at_least) or {}},
             "required": [key], "additionalProperties": False}
            for key, spec in sorted(info.actions.items())]}
    return resolve(info.body, version.at_least)


@accepts()
async def document(req: ApiRequest) -> dict[str, Any]:
    """The OpenAPI document of this API at the request's microversion."""
    from novalet.api.compute import routes  # the table imports this module

    assert req.version is not None
    return build(routes.ROUTES, req.version)
