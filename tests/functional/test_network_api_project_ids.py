"""Review finding 9: a project id longer than the network rows hold (64 characters)
is a 400 BadRequest on every create that takes one and on a quota update, never
the 500 of an over-long database value; nothing is made."""

from __future__ import annotations

import pytest

from tests.functional.conftest import Api
from tests.functional.test_network_api_routers import _external
from tests.functional.test_network_api_v2 import N, neutron_error

LONG = "p" * 65


@pytest.mark.parametrize(("collection", "body"), [
    ("routers", {"router": {"name": "r", "project_id": LONG}}),
    ("networks", {"network": {"name": "n", "project_id": LONG}}),
    ("security-groups", {"security_group": {"name": "g", "project_id": LONG}}),
])
async def test_an_over_long_owner_is_400(api: Api, collection: str,
                                         body: dict[str, dict[str, str]]) -> None:
    resp = await api.request("POST", f"{N}/{collection}", user="admin", json=body)
    assert "1 to 64 characters" in neutron_error(resp, 400, "BadRequest")
    listed = (await api.request("GET", f"{N}/{collection}?project_id={LONG}",
                                user="admin")).json()
    assert next(iter(listed.values())) == []


async def test_an_over_long_floating_ip_owner_is_400(api: Api) -> None:
    ext = await _external(api)
    resp = await api.request("POST", f"{N}/floatingips", user="admin", json={
        "floatingip": {"floating_network_id": ext["id"], "project_id": LONG}})
    assert "1 to 64 characters" in neutron_error(resp, 400, "BadRequest")
    listed = (await api.request("GET", f"{N}/floatingips", user="admin")).json()
    assert listed["floatingips"] == []


async def test_an_over_long_quota_project_is_400(api: Api) -> None:
    resp = await api.request("PUT", f"{N}/quotas/{LONG}", user="admin",
                             json={"quota": {"network": 5}})
    assert "1 to 64 characters" in neutron_error(resp, 400, "BadRequest")
    resp = await api.request("PUT", f"{N}/quotas/{'q' * 64}", user="admin",
                             json={"quota": {"network": 5}})
    assert resp.status_code == 200, resp.text
