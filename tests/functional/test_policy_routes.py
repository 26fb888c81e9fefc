"""Every compute route checks policy before it acts: a token with no role at all, on
the very project that owns the resources, gets nothing done but the few routes
Nova opens to any user."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

from novalet.api.compute import routes, server_actions
from tests.functional.conftest import Api, boot

V = "/v2.1"
# Nova's defaults let any authenticated user (or anyone) do these.
ANY_USER = {
    ("GET", "/"), ("GET", V), ("GET", V + "/"), ("GET", V + "/openapi.json"),
    ("GET", V + "/limits"), ("GET", V + "/os-availability-zone"),
    ("GET", V + "/os-floating-ip-pools"), ("GET", V + "/os-quota-sets/{tenant_id}/defaults"),
    ("GET", V + "/flavors"), ("GET", V + "/flavors/detail"), ("GET", V + "/flavors/{flavor_id}"),
    ("GET", V + "/extensions"), ("GET", V + "/extensions/{alias}"),
    # key pairs belong to a user: "rule:admin_api or user_id:%(user_id)s"
    ("GET", V + "/os-keypairs"), ("POST", V + "/os-keypairs"),
    ("GET", V + "/os-keypairs/{name}"), ("DELETE", V + "/os-keypairs/{name}"),
}

ACTION_BODIES: dict[str, Any] = {
    "reboot": {"type": "HARD"}, "createImage": {"name": "snap"}, "rescue": {},
    "os-getConsoleOutput": {}, "resize": {"flavorRef": "2"},
    "addSecurityGroup": {"name": "default"}, "removeSecurityGroup": {"name": "default"},
    "addFloatingIp": {"address": "10.9.9.9"}, "removeFloatingIp": {"address": "10.9.9.9"},
    "os-resetState": {"state": "error"}, "changePassword": {"adminPass": "pw"},
    "createBackup": {"name": "b", "backup_type": "daily", "rotation": 1},
    "addFixedIp": {"networkId": "net"}, "removeFixedIp": {"address": "10.9.9.9"},
    "os-migrateLive": {"host": None, "block_migration": "auto"}, "evacuate": {},
}


async def _no_role_token(api: Api, server: dict[str, Any]) -> str:
    token, _ = api.cloud.services.tokens.issue(
        user_id=server["user_id"], user_name="demo", user_domain_id="default",
        project_id=server["tenant_id"], project_name="demo", project_domain_id="default",
        roles=[])
    return token


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


async def test_no_route_acts_for_a_token_without_roles(api: Api) -> None:
    server = await boot(api, "target", user="demo")
    token = await _no_role_token(api, server)
    values = {"server_id": server["id"], "tenant_id": server["tenant_id"],
              "name": "nokey", "key": "k", "tag": "t"}
    passed: list[tuple[str, str, str, int]] = []
    for route in routes.ROUTES:
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            for version in ("2.1", "2.35", "2.100"):
                url = "/compute" + _fill(route.path, values)
                resp = await api.client.request(
                    method, url, json={} if method in ("POST", "PUT") else None,
                    headers={"X-Auth-Token": token,
                             "OpenStack-API-Version": f"compute {version}"})
                if resp.status_code < 400 and (method, route.path) not in ANY_USER:
                    passed.append((method, route.path, version, resp.status_code))
    assert passed == []


async def test_no_server_action_acts_for_a_token_without_roles(api: Api) -> None:
    server = await boot(api, "target", user="demo")
    token = await _no_role_token(api, server)
    outcomes = {}
    for action in server_actions.ACTIONS:
        resp = await api.client.post(
            f"/compute/v2.1/servers/{server['id']}/action",
            json={action: ACTION_BODIES.get(action)},
            headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.100"})
        outcomes[action] = resp.status_code
    assert {a: s for a, s in outcomes.items() if s < 400} == {}
    # Policy speaks first (403) wherever the body was well formed.
    assert outcomes["reboot"] == outcomes["os-stop"] == outcomes["createImage"] == 403
    after = (await api.request("GET", f"/compute/v2.1/servers/{server['id']}")).json()
    assert after["server"]["status"] == "ACTIVE"
