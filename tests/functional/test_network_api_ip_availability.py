"""Network IP availability (/network/v2.0/network-ip-availabilities) over HTTP:
admins see, per network and subnet, how many pool addresses there are and how
many ports, servers and floating IPs hold; filters; members are refused."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api
from tests.functional.test_network_api_floatingips import _external, _fip
from tests.functional.test_network_api_subnets import subnet
from tests.functional.test_network_api_v2 import create, neutron_error

N = "/network/v2.0"
A = f"{N}/network-ip-availabilities"


async def _show(api: Api, network_id: str) -> dict[str, Any]:
    resp = await api.request("GET", f"{A}/{network_id}", user="admin")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["network_ip_availability"])


async def test_counts_follow_ports_and_pools(api: Api) -> None:
    network = await create(api, name="counted")
    made = await subnet(api, network["id"], "10.9.9.0/24", allocation_pools=[
        {"start": "10.9.9.10", "end": "10.9.9.29"}])
    shown = await _show(api, network["id"])
    assert (shown["network_id"], shown["network_name"], shown["project_id"],
            shown["tenant_id"]) == (network["id"], "counted", network["project_id"],
                                    network["project_id"])
    assert (shown["total_ips"], shown["used_ips"]) == (20, 0)
    assert shown["subnet_ip_availability"] == [{
        "subnet_id": made["id"], "subnet_name": "", "cidr": "10.9.9.0/24", "ip_version": 4,
        "total_ips": 20, "used_ips": 0}]
    ports = []
    for _ in range(3):
        resp = await api.request("POST", f"{N}/ports",
                                 json={"port": {"network_id": network["id"]}})
        assert resp.status_code == 201, resp.text
        ports.append(resp.json()["port"]["id"])
    assert (await _show(api, network["id"]))["used_ips"] == 3
    await api.request("DELETE", f"{N}/ports/{ports[0]}")
    shown = await _show(api, network["id"])
    assert (shown["used_ips"], shown["subnet_ip_availability"][0]["used_ips"]) == (2, 2)


async def test_external_network_counts_floating_ips(api: Api) -> None:
    ext = await _external(api)
    assert ((await _show(api, ext["id"]))["total_ips"],
            (await _show(api, ext["id"]))["used_ips"]) == (3, 0)
    resp = await _fip(api, floating_network_id=ext["id"])
    assert resp.status_code == 201, resp.text
    assert (await _show(api, ext["id"]))["used_ips"] == 1


async def test_list_and_filters(api: Api) -> None:
    bare = await create(api, name="bare")
    served = await create(api, name="served")
    await subnet(api, served["id"], "10.9.8.0/24")
    resp = await api.request("GET", A, user="admin")
    assert resp.status_code == 200, resp.text
    listed = {a["network_id"]: a for a in resp.json()["network_ip_availabilities"]}
    assert listed[bare["id"]]["subnet_ip_availability"] == []
    assert listed[bare["id"]]["total_ips"] == 0
    assert listed[served["id"]]["total_ips"] == 253  # /24 less network, gateway, broadcast
    assert "id" not in listed[bare["id"]] and "ip_version" not in listed[bare["id"]]
    for query, expected in ((f"network_id={bare['id']}", [bare["id"]]),
                            ("network_name=served", [served["id"]]),
                            (f"network_name=served&project_id={served['project_id']}",
                             [served["id"]]),
                            ("network_name=bare&ip_version=4", [])):
        resp = await api.request("GET", f"{A}?{query}", user="admin")
        assert resp.status_code == 200, resp.text
        got = [a["network_id"] for a in resp.json()["network_ip_availabilities"]]
        assert got == expected, query
    resp = await api.request("GET", f"{A}?ip_version=4&fields=network_id", user="admin")
    assert {"network_id": served["id"]} in resp.json()["network_ip_availabilities"]
    resp = await api.request("GET", f"{A}?colour=red", user="admin")
    neutron_error(resp, 400, "BadRequest")


async def test_admin_only_and_unknown_network(api: Api) -> None:
    network = await create(api, name="mine")
    for path in (A, f"{A}/{network['id']}"):
        neutron_error(await api.request("GET", path), 403, "PolicyNotAuthorized")
    resp = await api.request("GET", f"{A}/no-such-network", user="admin")
    neutron_error(resp, 404, "NetworkNotFound")
