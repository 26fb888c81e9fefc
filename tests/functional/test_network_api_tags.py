"""Tags (standard-attr-tag) on networks, subnets, ports, security groups and floating
IPs over HTTP: replace, add, check, list and remove; the `tags` attribute and the
tags / tags-any / not-tags / not-tags-any list filters; Neutron's limits and errors;
another project's resources; a deleted resource's tags go with it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from novalet.db.models import Tag
from tests.functional.conftest import Api, boot, delete_server
from tests.functional.test_network_api_floatingips import _external, _fip, _port
from tests.functional.test_network_api_subnets import subnet
from tests.functional.test_network_api_v2 import create, neutron_error

N = "/network/v2.0"


async def _stored(api: Api) -> int:
    async with api.cloud.services.db.transaction() as s:
        return int((await s.execute(select(func.count(Tag.id)))).scalar_one())


async def _make(api: Api, kind: str) -> str:
    """One resource of the kind, the demo project's; its id."""
    if kind == "networks":
        return str((await create(api, name="tagged"))["id"])
    network = await create(api, name="holder")
    if kind == "subnets":
        return str((await subnet(api, network["id"], "10.9.7.0/24"))["id"])
    if kind == "ports":
        await subnet(api, network["id"], "10.9.7.0/24")
        resp = await api.request("POST", f"{N}/ports", json={"port": {"network_id": network["id"]}})
        return str(resp.json()["port"]["id"])
    if kind == "security-groups":
        resp = await api.request("POST", f"{N}/security-groups",
                                 json={"security_group": {"name": "tagged"}})
        return str(resp.json()["security_group"]["id"])
    ext = await _external(api)
    return str((await _fip(api, floating_network_id=ext["id"])).json()["floatingip"]["id"])


SINGULAR = {"networks": "network", "subnets": "subnet", "ports": "port",
            "security-groups": "security_group", "floatingips": "floatingip"}
PLURAL = {"networks": "networks", "subnets": "subnets", "ports": "ports",
          "security-groups": "security_groups", "floatingips": "floatingips"}


@pytest.mark.parametrize("kind", list(SINGULAR))
async def test_tags_on_each_kind(api: Api, kind: str) -> None:
    rid = await _make(api, kind)
    url = f"{N}/{kind}/{rid}/tags"
    shown = (await api.request("GET", f"{N}/{kind}/{rid}")).json()[SINGULAR[kind]]
    assert shown["tags"] == []
    resp = await api.request("PUT", url, json={"tags": ["red", "blue", "red"]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tags": ["blue", "red"]}
    assert (await api.request("PUT", f"{url}/green")).status_code == 201
    assert (await api.request("PUT", f"{url}/green")).status_code == 201  # idempotent
    assert (await api.request("GET", url)).json() == {"tags": ["blue", "green", "red"]}
    assert (await api.request("GET", f"{url}/green")).status_code == 204
    neutron_error(await api.request("GET", f"{url}/black"), 404, "TagNotFound")
    shown = (await api.request("GET", f"{N}/{kind}/{rid}")).json()[SINGULAR[kind]]
    assert shown["tags"] == ["blue", "green", "red"]
    listed = (await api.request("GET", f"{N}/{kind}?tags=blue,green")).json()[PLURAL[kind]]
    assert [r["id"] for r in listed] == [rid]
    assert (await api.request("DELETE", f"{url}/green")).status_code == 204
    neutron_error(await api.request("DELETE", f"{url}/green"), 404, "TagNotFound")
    assert (await api.request("DELETE", url)).status_code == 204
    assert (await api.request("GET", url)).json() == {"tags": []}


async def test_list_filters(api: Api) -> None:
    ids = {}
    for name, tags in (("a", ["x", "y"]), ("b", ["y"]), ("c", [])):
        ids[name] = (await create(api, name=name))["id"]
        await api.request("PUT", f"{N}/networks/{ids[name]}/tags", json={"tags": tags})

    async def names(query: str) -> list[str]:
        resp = await api.request("GET", f"{N}/networks?{query}&sort_key=name&sort_dir=asc")
        assert resp.status_code == 200, resp.text
        return [n["name"] for n in resp.json()["networks"] if n["name"] in ids]

    assert await names("tags=x,y") == ["a"]
    assert await names("tags=y") == ["a", "b"]
    assert await names("tags=x&tags=y") == ["a"]
    assert await names("tags-any=x,y") == ["a", "b"]
    assert await names("not-tags=x,y") == ["b", "c"]
    assert await names("not-tags-any=x") == ["b", "c"]
    assert await names("not-tags-any=x,y") == ["c"]
    assert await names("tags=y&not-tags=x") == ["b"]


async def test_limits_and_bad_bodies(api: Api) -> None:
    rid = await _make(api, "networks")
    url = f"{N}/networks/{rid}/tags"
    neutron_error(await api.request("PUT", f"{url}/{'t' * 61}"), 400, "InvalidInput")
    assert (await api.request("PUT", f"{url}/{'t' * 60}")).status_code == 201
    many = [f"t{i}" for i in range(51)]
    neutron_error(await api.request("PUT", url, json={"tags": many}), 400, "InvalidInput")
    for body in ({"tags": "red"}, {"tags": [1]}, {"tags": [""]}, {"nope": []}, ["red"]):
        neutron_error(await api.request("PUT", url, json=body), 400, "InvalidInput")
    assert (await api.request("PUT", url, json={"tags": many[:50]})).status_code == 200
    neutron_error(await api.request("PUT", f"{url}/one-more"), 400, "InvalidInput")
    assert len((await api.request("GET", url)).json()["tags"]) == 50
    neutron_error(await api.request("GET", f"{N}/networks/no-such/tags"), 404,
                  "NetworkNotFound")
    resp = await api.request("GET", f"{N}/quotas/{rid}/tags")
    assert resp.status_code == 404, resp.text


async def test_another_project(api: Api, other: str) -> None:
    mine = await _make(api, "networks")
    await api.request("PUT", f"{N}/networks/{mine}/tags", json={"tags": ["mine"]})
    for method in ("GET", "PUT", "DELETE"):
        resp = await api.request(method, f"{N}/networks/{mine}/tags", user="other",
                                 json={"tags": ["theirs"]})
        neutron_error(resp, 404, "NetworkNotFound")
        resp = await api.request(method, f"{N}/networks/{mine}/tags/mine", user="other")
        neutron_error(resp, 404, "NetworkNotFound")
    # a shared network's tags: everybody reads them, only its project writes them
    shared = (await create(api, user="admin", name="shared", shared=True))["id"]
    await api.request("PUT", f"{N}/networks/{shared}/tags/common", user="admin")
    resp = await api.request("GET", f"{N}/networks/{shared}/tags", user="other")
    assert resp.json() == {"tags": ["common"]}
    resp = await api.request("PUT", f"{N}/networks/{shared}/tags/mine", user="other")
    neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await api.request("DELETE", f"{N}/networks/{shared}/tags", user="other")
    neutron_error(resp, 403, "PolicyNotAuthorized")
    assert (await api.request("GET", f"{N}/networks/{shared}/tags")).json() == {
        "tags": ["common"]}


async def test_deleting_a_resource_deletes_its_tags(api: Api) -> None:
    network = await create(api, name="gone")
    made = await subnet(api, network["id"], "10.9.6.0/24")
    resp = await api.request("POST", f"{N}/ports", json={"port": {"network_id": network["id"]}})
    port = resp.json()["port"]["id"]
    group = (await api.request("POST", f"{N}/security-groups",
                               json={"security_group": {"name": "g"}})).json()
    for kind, rid in (("networks", network["id"]), ("subnets", made["id"]),
                      ("ports", port), ("security-groups", group["security_group"]["id"])):
        assert (await api.request("PUT", f"{N}/{kind}/{rid}/tags/t")).status_code == 201
    assert await _stored(api) == 4
    assert (await api.request("DELETE", f"{N}/ports/{port}")).status_code == 204
    assert (await api.request("DELETE", f"{N}/security-groups/"
                              f"{group['security_group']['id']}")).status_code == 204
    assert await _stored(api) == 2
    assert (await api.request("DELETE", f"{N}/networks/{network['id']}")).status_code == 204
    assert await _stored(api) == 0
    ext = await _external(api)
    fip = (await _fip(api, floating_network_id=ext["id"])).json()["floatingip"]["id"]
    assert (await api.request("PUT", f"{N}/floatingips/{fip}/tags/t")).status_code == 201
    assert (await api.request("DELETE", f"{N}/floatingips/{fip}")).status_code == 204
    assert await _stored(api) == 0


async def test_the_compute_face_deleting_drops_tags_too(api: Api) -> None:
    """A server's NIC deleted with its server, a group deleted by os-security-groups."""
    server = await boot(api, "tagged-vm", networks="auto")
    port = (await _port(api, server["id"]))["port_id"]
    assert (await api.request("PUT", f"{N}/ports/{port}/tags/nic")).status_code == 201
    group = (await api.request("POST", f"{N}/security-groups",
                               json={"security_group": {"name": "g"}})).json()["security_group"]
    assert (await api.request("PUT", f"{N}/security-groups/{group['id']}/tags/g")
            ).status_code == 201
    assert await _stored(api) == 2
    await delete_server(api, server["id"])
    assert await _stored(api) == 1
    proxied = (await api.request("GET", "/compute/v2.1/os-security-groups",
                                 version="2.35")).json()["security_groups"]
    (same,) = [g for g in proxied if g["name"] == "g"]
    resp = await api.request("DELETE", f"/compute/v2.1/os-security-groups/{same['id']}",
                             version="2.35")
    assert resp.status_code == 202, resp.text
    assert await _stored(api) == 0
