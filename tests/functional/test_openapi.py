"""The compute API's OpenAPI document: valid OpenAPI 3.1, generated from the live route
table, every route's handler declaring what it accepts."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest
from openapi_spec_validator import validate as validate_spec
from starlette.routing import Route

from novalet.api.compute import microversions, openapi, routes
from novalet.cli.main import main
from tests.functional.conftest import Api

DOC = "/compute/v2.1/openapi.json"


def _route_operations() -> set[tuple[str, str]]:
    return {(method.lower(), route.path) for route in routes.ROUTES
            if isinstance(route, Route) for method in route.methods or () if method != "HEAD"}


@pytest.mark.parametrize("version", [microversions.MIN, microversions.APIVersion.parse("2.36"),
                                     microversions.MAX])
def test_document_is_valid_openapi(version: microversions.APIVersion) -> None:
    document = openapi.build(routes.ROUTES, version)
    validate_spec(document)
    assert document["openapi"].startswith("3.")
    assert document["info"]["version"] == str(version)


def test_document_lists_every_route() -> None:
    document = openapi.build(routes.ROUTES)
    documented = {(method, path) for path, operations in document["paths"].items()
                  for method in operations}
    assert documented == _route_operations()
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_every_handler_declares_its_schemas() -> None:
    """A new endpoint must say what it accepts (@accepts in api/validation.py), so that
    it is validated and documented."""
    assert openapi.build(routes.ROUTES)["x-undeclared"] == []


def test_schemas_follow_the_microversion() -> None:
    old = openapi.build(routes.ROUTES, microversions.MIN)["paths"]["/v2.1/servers"]["post"]
    new = openapi.build(routes.ROUTES)["paths"]["/v2.1/servers"]["post"]
    server_old = old["requestBody"]["content"]["application/json"]["schema"]
    server_new = new["requestBody"]["content"]["application/json"]["schema"]
    assert "networks" not in server_old["properties"]["server"]["required"]
    assert "networks" in server_new["properties"]["server"]["required"]
    assert "tags" in server_new["properties"]["server"]["properties"]
    listing = openapi.build(routes.ROUTES)["paths"]["/v2.1/servers"]["get"]
    assert {"limit", "marker", "sort_key"} <= {p["name"] for p in listing["parameters"]
                                              if p["in"] == "query"}


def test_actions_are_one_schema_per_key() -> None:
    action = openapi.build(routes.ROUTES)["paths"]["/v2.1/servers/{server_id}/action"]["post"]
    keys = {next(iter(option["required"])) for option in
            action["requestBody"]["content"]["application/json"]["schema"]["anyOf"]}
    assert {"reboot", "os-stop", "rebuild", "createImage", "resize"} <= keys


async def test_published_without_a_token(api: Api) -> None:
    resp = await api.client.get(DOC)
    assert resp.status_code == 200, resp.text
    document = resp.json()
    assert document["info"]["version"] == str(microversions.MIN)
    assert "/v2.1/servers" in document["paths"]
    resp = await api.client.get(DOC, headers={"OpenStack-API-Version": "compute latest"})
    assert resp.json()["info"]["version"] == str(microversions.MAX)
    assert resp.json()["paths"]["/v2.1/openapi.json"]["get"]["security"] == []


def test_manage_openapi_prints_the_document() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["manage", "openapi", "--microversion", "2.10"]) == 0
    document = json.loads(out.getvalue())
    assert document["info"]["version"] == "2.10"
    assert document == json.loads(json.dumps(openapi.build(
        routes.ROUTES, microversions.APIVersion.parse("2.10"))))
