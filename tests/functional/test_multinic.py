"""addFixedIp and removeFixedIp (nova-network multinic): a NIC with an address from a
network, plugged into the guest, and its removal by address; 404 from 2.44."""

from __future__ import annotations

from typing import Any

import httpx

from novalet.virt.fake import FakeDriver
from tests.functional.conftest import Api, boot

S = "/compute/v2.1/servers"


async def _action(api: Api, sid: str, body: Any, user: str = "demo",
                  version: str = "2.43") -> httpx.Response:
    return await api.request("POST", f"{S}/{sid}/action", json=body, user=user,
                             version=version)


async def _addresses(api: Api, sid: str) -> list[str]:
    resp = await api.request("GET", f"{S}/{sid}/os-interface")
    return [ip["ip_address"] for nic in resp.json()["interfaceAttachments"]
            for ip in nic["fixed_ips"]]


async def test_add_and_remove_fixed_ip(api: Api, other: str) -> None:
    server = await boot(api, version="2.37", networks="auto")
    sid = server["id"]
    networks = (await api.request("GET", "/compute/v2.1/os-networks")).json()["networks"]
    network_id = networks[0]["id"]
    before = await _addresses(api, sid)
    resp = await _action(api, sid, {"addFixedIp": {"networkId": network_id}})
    assert resp.status_code == 202 and resp.content == b""
    after = await _addresses(api, sid)
    added = (set(after) - set(before)).pop()
    driver = api.cloud.compute.driver
    assert isinstance(driver, FakeDriver)
    assert len(driver.specs[sid].network_info) == len(before) + 1
    assert (await _action(api, sid, {"removeFixedIp": {"address": "10.250.0.1"}})
            ).status_code == 400  # not this server's
    resp = await _action(api, sid, {"removeFixedIp": {"address": added}})
    assert resp.status_code == 202
    assert await _addresses(api, sid) == before
    assert len(driver.specs[sid].network_info) == len(before)
    # Refusals: bodies, another project, unknown network, removed at 2.44.
    for bad in ({"addFixedIp": {}}, {"addFixedIp": {"networkId": ""}},
                {"removeFixedIp": {"address": "not-an-ip"}}, {"removeFixedIp": {}}):
        assert (await _action(api, sid, bad)).status_code == 400, bad
    assert (await _action(api, sid, {"addFixedIp": {"networkId": network_id}},
                          user="other")).status_code == 404
    assert (await _action(api, sid, {"addFixedIp": {"networkId": "nope"}})
            ).status_code == 400  # an unknown network in the body (Nova casts: 202)
    for body in ({"addFixedIp": {"networkId": network_id}},
                 {"removeFixedIp": {"address": added}}):
        assert (await _action(api, sid, body, version="2.44")).status_code == 404
    assert await _addresses(api, sid) == before


async def test_fixed_ip_refused_on_a_locked_server(api: Api) -> None:
    sid = (await boot(api, version="2.37", networks="auto"))["id"]
    networks = (await api.request("GET", "/compute/v2.1/os-networks")).json()["networks"]
    assert (await _action(api, sid, {"lock": None}, user="admin")).status_code == 202
    resp = await _action(api, sid, {"addFixedIp": {"networkId": networks[0]["id"]}})
    assert resp.status_code == 409 and "locked" in resp.text
