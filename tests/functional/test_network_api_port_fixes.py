"""Review fixes on ports: in vlan mode a member's port can't reach another project's
VLAN (no port on the unassigned pool, no claim of a network holding another project's
port, the network checked again at bind)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from novalet import exceptions
from novalet.db import network as db_network
from novalet.db import ports as db_ports
from novalet.network import port_binding
from tests.functional.conftest import (Api, add_other_project, boot, delete_server, ensure_image,
                                       make_conf, on_default_network)
from tests.functional.test_network_api_ports import _create, _network, _project
from tests.functional.test_network_api_v2 import N

V = "/compute/v2.1"


@pytest.fixture
async def vlan_api(state_dir: Any) -> Any:
    from novalet.service.allinone import AllInOne
    cloud = AllInOne(make_conf(state_dir, network__network_manager="vlan",
                               network__fixed_range="10.0.0.0/16"), in_process_http=True)
    await cloud.start()
    transport = httpx.ASGITransport(app=cloud.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test") as c:
            yield Api(cloud, c)
    finally:
        await cloud.stop()


async def _spare(api: Api, cidr: str) -> str:
    resp = await api.request("POST", f"{V}/os-networks", user="admin", json={
        "network": {"label": "spare", "cidr": cidr}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["network"]["project_id"] is None
    return str(resp.json()["network"]["id"])


async def _demo(api: Api) -> str:
    (project,) = await api.cloud.services.identity.list_projects(name="demo")
    return str(project.id)


async def test_vlan_a_member_makes_no_port_on_an_unassigned_network(vlan_api: Api) -> None:
    spare = await _spare(vlan_api, "172.30.0.0/24")
    resp = await vlan_api.request("POST", f"{N}/ports", json={"port": {"network_id": spare}})
    assert resp.status_code == 404, resp.text


async def test_vlan_no_claim_of_a_network_with_another_projects_port(vlan_api: Api) -> None:
    api = vlan_api
    other = await add_other_project(api)
    spare = await _spare(api, "172.30.1.0/24")
    demo = await _demo(api)
    # an admin makes demo a port there (admins may)
    resp = await api.request("POST", f"{N}/ports", user="admin", json={
        "port": {"network_id": spare, "project_id": demo}})
    assert resp.status_code == 201, resp.text
    db = api.cloud.services.db
    assert await db_network.claim_network(db, other, spare) is None
    claimed = await db_network.claim_network(db, demo, spare)
    assert claimed is not None and claimed.project_id == demo


async def test_vlan_a_port_whose_network_was_claimed_is_not_bound(vlan_api: Api) -> None:
    api = vlan_api
    other = await add_other_project(api)
    spare = await _spare(api, "172.30.2.0/24")
    demo = await _demo(api)
    resp = await api.request("POST", f"{N}/ports", user="admin", json={
        "port": {"network_id": spare, "project_id": demo}})
    port = resp.json()["port"]["id"]
    # another project takes the network by hand (an admin's os-networks associate)
    await db_network.set_network_fields(api.cloud.services.db, spare, {"project_id": other})
    resp = await api.request("POST", f"{V}/servers", json={"server": {
        "name": "intruder", "imageRef": await ensure_image(api), "flavorRef": "1",
        "networks": [{"port": port}]}})
    assert resp.status_code == 400, resp.text
    assert "not the project's" in resp.text
    with pytest.raises(db_ports.PortNetworkNotUsable):
        await port_binding.bind(api.cloud.services.db, "i-1", demo, None, [port], True)


async def _mine(api: Api, cidr: str) -> tuple[str, str]:
    return await _network(api, "mine", cidr, await _project(api))


async def _group(api: Api, name: str) -> str:
    resp = await api.request("POST", f"{N}/security-groups",
                             json={"security_group": {"name": name}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["security_group"]["id"])


async def _server_groups(api: Api, sid: str) -> list[str]:
    resp = await api.request("GET", f"{V}/servers/{sid}/os-security-groups", version="2.1")
    return sorted(g["name"] for g in resp.json()["security_groups"])


async def test_a_detached_port_takes_back_the_groups_it_added(api: Api) -> None:
    """Attaching a port adds its groups to the server; detaching takes back only
    those (the server's own stay), and the port leaves with its own groups."""
    network, _ = await _mine(api, "10.61.0.0/28")
    wide = await _group(api, "wide")
    port = await _create(api, network_id=network, security_groups=[wide])
    sid = (await boot(api, "narrow", networks=await on_default_network(api)))["id"]
    assert await _server_groups(api, sid) == ["default"]
    resp = await api.request("POST", f"{V}/servers/{sid}/os-interface",
                             json={"interfaceAttachment": {"port_id": port["id"]}})
    assert resp.status_code == 200, resp.text
    assert await _server_groups(api, sid) == ["default", "wide"]
    resp = await api.request("DELETE", f"{V}/servers/{sid}/os-interface/{port['id']}")
    assert resp.status_code == 202, resp.text
    assert await _server_groups(api, sid) == ["default"]
    shown = (await api.request("GET", f"{N}/ports/{port['id']}")).json()["port"]
    assert shown["security_groups"] == [wide]
    await delete_server(api, sid)


async def test_a_port_without_port_security_leaves_its_server_with_no_groups(api: Api
                                                                            ) -> None:
    """An unbound port with port security off carries no groups, so it can still be
    renamed (no 409 PortSecurityPortHasSecurityGroup)."""
    network, _ = await _mine(api, "10.62.0.0/28")
    port = await _create(api, network_id=network, port_security_enabled=False)
    sid = (await boot(api, "open", networks=await on_default_network(api)))["id"]
    resp = await api.request("POST", f"{V}/servers/{sid}/os-interface",
                             json={"interfaceAttachment": {"port_id": port["id"]}})
    assert resp.status_code == 200, resp.text
    resp = await api.request("DELETE", f"{V}/servers/{sid}/os-interface/{port['id']}")
    assert resp.status_code == 202, resp.text
    shown = (await api.request("GET", f"{N}/ports/{port['id']}")).json()["port"]
    assert shown["security_groups"] == []
    resp = await api.request("PUT", f"{N}/ports/{port['id']}", json={"port": {"name": "x"}})
    assert resp.status_code == 200, resp.text
    await delete_server(api, sid)


async def test_over_the_ports_quota_is_409(api: Api) -> None:
    """[quota] ports counts the project's ports, its servers' NICs too (Neutron's)."""
    network, _ = await _mine(api, "10.63.0.0/28")
    api.cloud.conf.set("quota", "ports", 2)
    await _create(api, network_id=network)
    await boot(api, "one-nic", networks=[{"uuid": network}])
    resp = await api.request("POST", f"{N}/ports", json={"port": {"network_id": network}})
    assert resp.status_code == 409, resp.text
    assert resp.json()["NeutronError"]["type"] == "OverQuota"
    assert "[quota] ports" in resp.json()["NeutronError"]["message"]
    resp = await api.request("POST", f"{N}/ports", json={"ports": [
        {"network_id": network}]})
    assert resp.status_code == 409, resp.text


@pytest.mark.parametrize("collection,item", [
    ("ports", {"network_id": "x"}), ("subnets", {"network_id": "x", "cidr": "10.0.0.0/24"}),
    ("security_group_rules", {"security_group_id": "x", "direction": "ingress"})])
async def test_a_bulk_create_of_over_100_is_400(api: Api, collection: str,
                                                item: dict[str, Any]) -> None:
    path = collection.replace("_", "-")
    resp = await api.request("POST", f"{N}/{path}", json={collection: [item] * 101})
    assert resp.status_code == 400, resp.text
    assert "at most 100" in resp.text


async def test_a_cancelled_bulk_create_leaves_nothing(api: Api) -> None:
    """A bulk create cancelled halfway (the client went) undoes what it made."""
    network, _ = await _mine(api, "10.64.0.0/28")
    ports = api.cloud.services.ports
    real = ports.create_port
    calls = 0

    async def create_then_cancel(ctx: Any, attrs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise asyncio.CancelledError
        return await real(ctx, attrs)

    ports.create_port = create_then_cancel  # type: ignore[method-assign]
    try:
        with pytest.raises(asyncio.CancelledError):
            await api.request("POST", f"{N}/ports", json={"ports": [
                {"network_id": network}, {"network_id": network}]})
    finally:
        ports.create_port = real  # type: ignore[method-assign]
    resp = await api.request("GET", f"{N}/ports", params={"network_id": network})
    assert resp.json()["ports"] == []


async def test_a_port_on_an_external_network_is_400_saying_why(api: Api) -> None:
    from tests.functional.test_network_api_floatingips import _external
    network = await _external(api)
    for user in ("demo", "admin"):
        resp = await api.request("POST", f"{N}/ports", user=user,
                                 json={"port": {"network_id": network["id"]}})
        assert resp.status_code == 400, resp.text
        assert "is external" in resp.json()["NeutronError"]["message"]


async def test_an_admin_attaches_a_port_to_another_projects_server(api: Api, other: str
                                                                   ) -> None:
    """The port must be the server's project's (not the admin's); a missing one is 404."""
    network, _ = await _network(api, "theirs", "10.65.0.0/28", other)
    port = await _create(api, user="other", network_id=network)
    sid = (await boot(api, "theirs", user="other", networks=[{"uuid": network}]))["id"]
    resp = await api.request("POST", f"{V}/servers/{sid}/os-interface", user="admin",
                             json={"interfaceAttachment": {"port_id": port["id"]}})
    assert resp.status_code == 200, resp.text
    missing = "6f8b5c1e-2a0c-4d7e-9a55-0d1c7e1f2a3b"
    resp = await api.request("POST", f"{V}/servers/{sid}/os-interface", user="admin",
                             json={"interfaceAttachment": {"port_id": missing}})
    assert resp.status_code == 404, resp.text
    resp = await api.request("DELETE", f"{V}/servers/{sid}", user="other")
    assert resp.status_code == 204, resp.text


async def test_a_failed_attach_takes_back_the_ports_groups(api: Api) -> None:
    network, _ = await _mine(api, "10.66.0.0/28")
    wide = await _group(api, "wide2")
    port = await _create(api, network_id=network, security_groups=[wide])
    sid = (await boot(api, "narrow2", networks=await on_default_network(api)))["id"]
    driver = api.cloud.compute.driver

    async def broken(uuid: str, vif: Any) -> None:
        raise exceptions.NovaletError("the hypervisor refused the NIC")

    driver.attach_interface = broken  # type: ignore[method-assign]
    resp = await api.request("POST", f"{V}/servers/{sid}/os-interface",
                             json={"interfaceAttachment": {"port_id": port["id"]}})
    assert resp.status_code >= 400, resp.text
    assert await _server_groups(api, sid) == ["default"]
    shown = (await api.request("GET", f"{N}/ports/{port['id']}")).json()["port"]
    assert (shown["device_id"], shown["security_groups"]) == ("", [wide])
