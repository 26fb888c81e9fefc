"""/servers/{id}/os-interface: list, show, attach by net_id and detach, on the fake
driver; what python-openstackclient's `server add/remove network` and `server add
fixed ip` call when there is no network service."""

from __future__ import annotations

from typing import Any

import httpx

from novalet.db import instances
from tests.functional.conftest import Api, boot

V = "/compute/v2.1"


async def _networks(api: Api) -> dict[str, str]:
    resp = await api.request("GET", f"{V}/os-networks", user="admin", version="2.35")
    return {n["label"]: n["id"] for n in resp.json()["networks"]}


async def _attachments(api: Api, sid: str, user: str = "demo") -> list[dict[str, Any]]:
    resp = await api.request("GET", f"{V}/servers/{sid}/os-interface", user=user)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["interfaceAttachments"])


async def _attach(api: Api, sid: str, attachment: dict[str, Any]) -> httpx.Response:
    return await api.request("POST", f"{V}/servers/{sid}/os-interface",
                             json={"interfaceAttachment": attachment})


async def test_attach_show_and_detach(api: Api) -> None:
    server = await boot(api, "nics", networks="auto")
    sid = server["id"]
    (first,) = await _attachments(api, sid)
    private = (await _networks(api))["private"]
    assert first["net_id"] == private and first["port_state"] == "ACTIVE"
    assert first["mac_addr"].startswith("fa:16:3e:")

    resp = await _attach(api, sid, {"net_id": private,
                                    "fixed_ips": [{"ip_address": "10.0.0.77"}]})
    assert resp.status_code == 200, resp.text
    second = resp.json()["interfaceAttachment"]
    (subnet,) = (await api.request("GET", f"/network/v2.0/networks/{private}")).json()[
        "network"]["subnets"]
    assert second["fixed_ips"] == [{"subnet_id": subnet, "ip_address": "10.0.0.77"}]
    shown = await api.request("GET", f"{V}/servers/{sid}/os-interface/{second['port_id']}")
    assert shown.json()["interfaceAttachment"] == second
    addresses = (await api.request("GET", f"{V}/servers/{sid}/ips")).json()["addresses"]
    assert sorted(a["addr"] for a in addresses["private"]) == sorted(
        [first["fixed_ips"][0]["ip_address"], "10.0.0.77"])
    # the host got the NIC, and the instance's network_info has it for later starts
    fake = api.cloud.compute.driver
    assert [v["id"] for v in fake.specs[sid].network_info][-1] == second["port_id"]
    stored = await instances.get(api.cloud.services.db, sid)
    assert len(stored.system_metadata["network_info"]) == 2

    resp = await api.request("DELETE", f"{V}/servers/{sid}/os-interface/{second['port_id']}")
    assert resp.status_code == 202, resp.text
    assert [a["port_id"] for a in await _attachments(api, sid)] == [first["port_id"]]
    assert [v["id"] for v in fake.specs[sid].network_info] == [first["port_id"]]
    stored = await instances.get(api.cloud.services.db, sid)
    assert len(stored.system_metadata["network_info"]) == 1
    # the address is free again
    again = await _attach(api, sid, {"net_id": private,
                                     "fixed_ips": [{"ip_address": "10.0.0.77"}]})
    assert again.status_code == 200, again.text


async def test_bad_attachments_are_refused(api: Api) -> None:
    server = await boot(api, "nics2", networks="auto")
    sid = server["id"]
    private = (await _networks(api))["private"]
    cases = [
        ({"port_id": "6f8b5c1e-2a0c-4d7e-9a55-0d1c7e1f2a3b"}, 404, "could not be found"),
        ({"port_id": "6f8b5c1e-2a0c-4d7e-9a55-0d1c7e1f2a3b", "net_id": private}, 400,
         "both network_id and port_id"),
        ({"net_id": "not-a-uuid"}, 400, "net_id"),
        ({"net_id": "6f8b5c1e-2a0c-4d7e-9a55-0d1c7e1f2a3b"}, 400, "could not be found"),
        ({"net_id": private, "fixed_ips": [{"ip_address": "10.9.9.9"}]}, 400, "not available"),
        ({"net_id": private, "tag": "x"}, 400, "tags"),
        ({"net_id": private, "bogus": 1}, 400, "bogus"),
    ]
    for attachment, code, words in cases:
        resp = await _attach(api, sid, attachment)
        assert resp.status_code == code, (attachment, resp.text)
        assert words in resp.text, (attachment, resp.text)
    missing = await api.request("DELETE", f"{V}/servers/{sid}/os-interface/nope")
    assert missing.status_code == 404, missing.text
    missing = await api.request("GET", f"{V}/servers/{sid}/os-interface/nope")
    assert missing.status_code == 404, missing.text
    assert len(await _attachments(api, sid)) == 1
