"""The network API (/network/v2.0) over HTTP: version discovery, extensions, Neutron's
error bodies, networks CRUD with scope and policy, and the compute proxy's view of
the same networks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from novalet.api.network.extensions import EXTENSIONS
from novalet.api.network.versions import RESOURCES
from novalet.db import network as db_network
from tests.functional.conftest import Api, boot, delete_server
from tests.functional.test_policy_roles import make_user

N = "/network/v2.0"


def neutron_error(resp: httpx.Response, code: int, type_name: str) -> str:
    """The message of a NeutronError body of status `code` and type `type_name`."""
    assert resp.status_code == code, resp.text
    body = resp.json()
    assert set(body) == {"NeutronError"}, body
    error = body["NeutronError"]
    assert set(error) == {"type", "message", "detail"}
    assert error["type"] == type_name, error
    assert error["message"]
    return str(error["message"])


async def create(api: Api, user: str = "demo", **network: Any) -> dict[str, Any]:
    resp = await api.request("POST", f"{N}/networks", user=user, json={"network": network})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["network"])


# --- discovery ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/network", "/network/"])
async def test_the_version_document_needs_no_token(api: Api, path: str) -> None:
    resp = await api.client.get(path)
    assert resp.status_code == 200, resp.text
    (version,) = resp.json()["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"] == [{"rel": "self", "href": "http://novalet.test/network/v2.0/"}]


@pytest.mark.parametrize("path", [N, N + "/"])
async def test_v2_lists_the_resources_served(api: Api, path: str) -> None:
    resp = await api.request("GET", path)
    assert resp.status_code == 200, resp.text
    assert resp.json()["resources"][0] == {
        "name": "network", "collection": "networks",
        "links": [{"rel": "self", "href": "http://novalet.test/network/v2.0/networks"}]}
    assert [r["collection"] for r in resp.json()["resources"]] == [
        collection for _, collection in RESOURCES]


async def test_the_root_names_the_network_endpoint(api: Api) -> None:
    services = (await api.client.get("/")).json()["services"]
    assert services["network"] == "http://novalet.test/network"


async def test_each_listed_extension_shows_its_attributes_on_networks(api: Api) -> None:
    """Only what is really served is listed: each extension's attributes are on the
    networks an admin reads."""
    resp = await api.request("GET", f"{N}/extensions")
    assert resp.status_code == 200, resp.text
    listed = {e["alias"]: e for e in resp.json()["extensions"]}
    assert set(listed) == set(EXTENSIONS)
    network = await create(api, user="admin", name="ext")
    for alias, (_, _, attributes) in EXTENSIONS.items():
        assert set(listed[alias]) == {"alias", "name", "description", "updated", "links"}
        for attribute in attributes:
            assert attribute in network, (alias, attribute)
        one = await api.request("GET", f"{N}/extensions/{alias}")
        assert one.json()["extension"] == listed[alias]


async def test_an_unknown_extension_is_a_neutron_404(api: Api) -> None:
    resp = await api.request("GET", f"{N}/extensions/dvr")
    assert "dvr" in neutron_error(resp, 404, "HTTPNotFound")


# --- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "code", "type_name"), [
    ("GET", N + "/nowhere", 404, "HTTPNotFound"),
    ("GET", "/network/v3.0/networks", 404, "HTTPNotFound"),
    ("PATCH", N + "/networks", 405, "HTTPMethodNotAllowed"),
    ("POST", N + "/extensions", 405, "HTTPMethodNotAllowed"),
])
async def test_unknown_paths_and_methods_answer_neutron_errors(
        api: Api, method: str, path: str, code: int, type_name: str) -> None:
    neutron_error(await api.request(method, path), code, type_name)


async def test_a_request_without_a_token_is_a_neutron_401(api: Api) -> None:
    neutron_error(await api.client.get(f"{N}/networks"), 401, "HTTPUnauthorized")


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "Malformed request body"),
    (b"[]", "Unable to find 'network'"),
    (b'{"net": {}}', "Unable to find 'network'"),
    (b'{"network": {"color": "blue"}}', "Unrecognized attribute(s) 'color'"),
    (b'{"network": {"id": "x"}}', "Attribute 'id' not allowed in POST"),
    (b'{"network": {"name": 5}}', "Invalid input for name"),
    (b'{"network": {"admin_state_up": "maybe"}}', "cannot be converted to boolean"),
    (b'{"network": {"mtu": "big"}}', "Invalid input for mtu"),
    (b'{"network": {"name": "' + b"x" * 256 + b'"}}', "exceeds maximum length of 255"),
])
async def test_bad_bodies_are_400(api: Api, body: bytes, words: str) -> None:
    resp = await api.request("POST", f"{N}/networks", content=body,
                             headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert words in resp.json()["NeutronError"]["message"]


async def test_an_unknown_network_is_network_not_found(api: Api) -> None:
    for method in ("GET", "PUT", "DELETE"):
        resp = await api.request(method, f"{N}/networks/no-such-id",
                                 json={"network": {"name": "x"}})
        assert "no-such-id" in neutron_error(resp, 404, "NetworkNotFound")


# --- networks -------------------------------------------------------------------------

async def test_a_member_creates_shows_updates_and_deletes_its_network(api: Api) -> None:
    network = await create(api, name="net1", description="first")
    assert network["name"] == "net1" and network["description"] == "first"
    assert network["tenant_id"] == network["project_id"] != ""
    assert network["status"] == "ACTIVE" and network["subnets"] == []
    assert network["admin_state_up"] is True and network["shared"] is False
    assert network["router:external"] is False and network["port_security_enabled"] is True
    assert network["mtu"] == 1500
    assert network["created_at"].endswith("Z") and network["updated_at"].endswith("Z")
    assert not any(k.startswith("provider:") for k in network)  # admin only
    row = await db_network.get_network(api.cloud.services.db, network["id"])
    assert row.cidr is None and row.bridge == "nvbr0"

    url = f"{N}/networks/{network['id']}"
    assert (await api.request("GET", url)).json()["network"] == network
    resp = await api.request("PUT", url, json={"network": {
        "name": "renamed", "description": "", "admin_state_up": False,
        "port_security_enabled": False, "mtu": 1400}})
    assert resp.status_code == 200, resp.text
    changed = resp.json()["network"]
    assert (changed["name"], changed["description"], changed["admin_state_up"],
            changed["port_security_enabled"], changed["mtu"]) == (
        "renamed", "", False, False, 1400)
    resp = await api.request("PUT", url, json={"network": {"project_id": "other"}})
    assert "read-only attribute project_id" in neutron_error(resp, 400, "HTTPBadRequest")

    resp = await api.request("DELETE", url)
    assert resp.status_code == 204, resp.text
    neutron_error(await api.request("GET", url), 404, "NetworkNotFound")


async def test_bulk_create_makes_all_or_none(api: Api) -> None:
    resp = await api.request("POST", f"{N}/networks", json={"networks": [
        {"name": "bulk1"}, {"name": "bulk2"}]})
    assert resp.status_code == 201, resp.text
    assert [n["name"] for n in resp.json()["networks"]] == ["bulk1", "bulk2"]
    resp = await api.request("POST", f"{N}/networks", json={"networks": [
        {"name": "bulk3"}, {"name": "bulk4", "shared": True}]})
    neutron_error(resp, 403, "PolicyNotAuthorized")
    names = [n["name"] for n in (await api.request("GET", f"{N}/networks")).json()["networks"]]
    assert "bulk3" not in names and "bulk1" in names
    resp = await api.request("POST", f"{N}/networks", json={"networks": []})
    neutron_error(resp, 400, "HTTPBadRequest")


async def test_admin_sees_provider_attributes_and_sets_shared_and_external(api: Api) -> None:
    network = await create(api, user="admin", name="public", shared=True,
                           **{"router:external": True, "provider:network_type": "flat",
                              "provider:physical_network": "default"})
    assert network["shared"] is True and network["router:external"] is True
    assert network["provider:network_type"] == "flat"
    assert network["provider:physical_network"] == "default"
    assert network["provider:segmentation_id"] is None
    resp = await api.request("POST", f"{N}/networks", user="admin", json={"network": {
        "provider:network_type": "vxlan"}})
    assert "vxlan is not served" in neutron_error(resp, 400, "InvalidInput")


async def test_vlan_mode_gives_a_project_network_the_next_vlan(state_dir: Any) -> None:
    from tests.functional.conftest import make_conf
    from novalet.service.allinone import AllInOne
    aio = AllInOne(make_conf(state_dir, network__network_manager="vlan"), in_process_http=True)
    await aio.start()
    try:
        transport = httpx.ASGITransport(app=aio.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test") as c:
            api = Api(aio, c)
            first = await create(api, name="a")
            second = await create(api, user="admin", name="b",
                                  **{"provider:segmentation_id": 3000})
            assert second["provider:network_type"] == "vlan"
            assert second["provider:segmentation_id"] == 3000
            row = await db_network.get_network(aio.services.db, first["id"])
            assert row.vlan is not None and row.bridge == f"nvbr{row.vlan}"
            resp = await api.request("POST", f"{N}/networks", user="admin", json={
                "network": {"provider:segmentation_id": 3000}})
            neutron_error(resp, 409, "VlanIdInUse")
            # A boot still gets the project a nova-network network with addresses.
            server = await boot(api, networks="auto")
            (vif,) = await aio.services.network.vifs_for_instance(server["id"])
            assert vif.network_id not in (first["id"], second["id"])
    finally:
        await aio.stop()


@pytest.mark.parametrize("attribute", [
    {"shared": True}, {"router:external": True}, {"provider:network_type": "flat"},
    {"provider:segmentation_id": 5}])
async def test_a_member_may_not_set_admin_attributes(api: Api, attribute: dict[str, Any]
                                                      ) -> None:
    resp = await api.request("POST", f"{N}/networks", json={"network": attribute})
    name = next(iter(attribute))
    assert f"create_network:{name}" in neutron_error(resp, 403, "PolicyNotAuthorized")


async def test_a_member_may_give_the_defaults_of_admin_attributes(api: Api) -> None:
    network = await create(api, shared=False, **{"router:external": False})
    assert network["shared"] is False


async def test_a_member_may_not_create_for_another_project(api: Api, other: str) -> None:
    resp = await api.request("POST", f"{N}/networks", json={"network": {"project_id": other}})
    assert "requires admin" in neutron_error(resp, 400, "HTTPBadRequest")
    network = await create(api, user="admin", project_id=other, name="theirs")
    assert network["tenant_id"] == other


async def test_a_reader_reads_but_may_not_create(api: Api) -> None:
    await make_user(api, "reader", "reader")
    own = await create(api, name="own")
    resp = await api.request("POST", f"{N}/networks", user="reader", json={"network": {}})
    assert "create_network" in neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await api.request("GET", f"{N}/networks/{own['id']}", user="reader")
    assert resp.status_code == 200, resp.text
    resp = await api.request("DELETE", f"{N}/networks/{own['id']}", user="reader")
    neutron_error(resp, 403, "PolicyNotAuthorized")


async def test_another_projects_network_is_not_found_unless_shared(api: Api, other: str
                                                                   ) -> None:
    private = await create(api, name="private")
    for method in ("GET", "PUT", "DELETE"):
        resp = await api.request(method, f"{N}/networks/{private['id']}", user="other",
                                 json={"network": {"name": "x"}})
        neutron_error(resp, 404, "NetworkNotFound")
    listed = (await api.request("GET", f"{N}/networks", user="other")).json()["networks"]
    assert private["id"] not in [n["id"] for n in listed]

    shared = await create(api, user="admin", name="shared", shared=True)
    external = await create(api, user="admin", project_id=other, name="ext2",
                            **{"router:external": True})
    listed = (await api.request("GET", f"{N}/networks", user="demo")).json()["networks"]
    assert {shared["id"], external["id"]} <= {n["id"] for n in listed}
    # Visible, but not theirs to change: 403, not 404.
    resp = await api.request("PUT", f"{N}/networks/{shared['id']}",
                             json={"network": {"name": "mine"}})
    neutron_error(resp, 403, "PolicyNotAuthorized")


async def test_deleting_a_network_a_server_is_on_is_network_in_use(api: Api) -> None:
    resp = await api.request("POST", "/compute/v2.1/os-networks", user="admin", version="2.35",
                             json={"network": {"label": "busy", "cidr": "10.30.0.0/24"}})
    assert resp.status_code == 200, resp.text
    network_id = resp.json()["network"]["id"]
    server = await boot(api, networks=[{"uuid": network_id}])
    vifs = await api.cloud.services.network.vifs_for_instance(server["id"])
    assert [v.network_id for v in vifs] == [network_id]
    resp = await api.request("DELETE", f"{N}/networks/{network_id}", user="admin")
    assert network_id in neutron_error(resp, 409, "NetworkInUse")
    assert (await api.request("GET", f"{N}/networks/{network_id}")).status_code == 200
    await delete_server(api, server["id"])
    resp = await api.request("DELETE", f"{N}/networks/{network_id}", user="admin")
    assert resp.status_code == 204, resp.text


async def test_updating_shared_or_mtu_is_checked(api: Api) -> None:
    network = await create(api, name="n")
    url = f"{N}/networks/{network['id']}"
    resp = await api.request("PUT", url, json={"network": {"shared": True}})
    assert "update_network:shared" in neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await api.request("PUT", url, user="admin", json={"network": {"shared": True}})
    assert resp.json()["network"]["shared"] is True
    resp = await api.request("PUT", url, json={"network": {"mtu": 9000}})
    assert "mtu 9000" in neutron_error(resp, 400, "InvalidInput")
    resp = await api.request("PUT", url, user="admin", json={"network": {
        "provider:network_type": "flat"}})
    neutron_error(resp, 400, "InvalidInput")
    private = (await api.request("GET", f"{N}/networks?name=private")).json()["networks"][0]
    assert private["shared"] is True and private["tenant_id"] is None  # nova-network's own
    resp = await api.request("PUT", f"{N}/networks/{private['id']}", user="admin",
                             json={"network": {"shared": False}})
    neutron_error(resp, 409, "InvalidSharedSetting")


async def test_a_subnetless_network_is_no_default_for_a_boot(api: Api) -> None:
    """A member's own network without a subnet doesn't displace the network its
    boots use (it has no addresses to give)."""
    await create(api, name="empty")
    server = await boot(api, networks="auto")
    (vif,) = await api.cloud.services.network.vifs_for_instance(server["id"])
    shown = (await api.request("GET", f"{N}/networks/{vif.network_id}")).json()["network"]
    assert shown["name"] == "private"


async def test_unsharing_a_network_other_projects_servers_use_is_409(api: Api, other: str
                                                                    ) -> None:
    resp = await api.request("POST", "/compute/v2.1/os-networks", user="admin", version="2.35",
                             json={"network": {"label": "used", "cidr": "10.40.0.0/24"}})
    network_id = resp.json()["network"]["id"]
    server = await boot(api, networks=[{"uuid": network_id}])
    # The network then goes to project other (as vlan mode's os-networks/add does).
    await db_network.set_network_fields(api.cloud.services.db, network_id,
                                        {"project_id": other, "shared": True})
    url = f"{N}/networks/{network_id}"
    resp = await api.request("PUT", url, user="admin", json={"network": {"shared": False}})
    neutron_error(resp, 409, "InvalidSharedSetting")
    await delete_server(api, server["id"])
    resp = await api.request("PUT", url, user="admin", json={"network": {"shared": False}})
    assert resp.status_code == 200 and resp.json()["network"]["shared"] is False


# --- both faces -----------------------------------------------------------------------

async def test_the_compute_proxy_and_the_network_api_show_the_same_networks(api: Api
                                                                            ) -> None:
    made_here = await create(api, user="admin", name="via-neutron")
    resp = await api.request("GET", f"/compute/v2.1/os-networks/{made_here['id']}",
                             user="admin", version="2.35")
    assert resp.status_code == 200, resp.text
    proxy_view = resp.json()["network"]
    assert proxy_view["label"] == "via-neutron"
    assert proxy_view["cidr"] is None and proxy_view["gateway"] is None

    resp = await api.request("POST", "/compute/v2.1/os-networks", user="admin", version="2.35",
                             json={"network": {"label": "via-nova", "cidr": "10.20.0.0/24"}})
    assert resp.status_code == 200, resp.text
    made_there = resp.json()["network"]
    resp = await api.request("GET", f"{N}/networks/{made_there['id']}", user="admin")
    assert resp.status_code == 200, resp.text
    assert resp.json()["network"]["name"] == "via-nova"
    listed = (await api.request("GET", "/compute/v2.1/os-networks", user="admin",
                                version="2.35")).json()["networks"]
    assert made_here["id"] in [n["id"] for n in listed]
