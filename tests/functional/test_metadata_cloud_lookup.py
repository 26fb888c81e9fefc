"""The metadata service against the cloud's own database: found by fixed IP, fenced."""

import base64

import httpx

from novalet.metadata.app import create_app
from novalet.metadata.cloud_lookup import CloudLookup
from tests.functional.conftest import Api, boot


def _client(api: Api, address: str) -> httpx.AsyncClient:
    services = api.cloud.services
    app = create_app(CloudLookup(services.db, services.network))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4321)),
                             base_url="http://169.254.169.254")


async def test_instances_get_their_own_metadata_only(api: Api) -> None:
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    one = await boot(api, "one", version="2.37", networks="auto", user_data=user_data,
                     metadata={"role": "db"})
    two = await boot(api, "two", version="2.37", networks="auto")
    ip_one = next(iter(one["addresses"].values()))[0]["addr"]
    ip_two = next(iter(two["addresses"].values()))[0]["addr"]
    async with _client(api, ip_one) as guest:
        meta = (await guest.get("/openstack/latest/meta_data.json")).json()
        assert (meta["uuid"], meta["name"], meta["meta"]) == (one["id"], "one", {"role": "db"})
        assert (await guest.get("/openstack/latest/user_data")).content == \
            b"#!/bin/sh\necho hi\n"
        assert (await guest.get("/latest/meta-data/local-ipv4")).text == ip_one
        assert (await guest.post("/openstack/latest/password", content=b"s3cret")).is_success
        assert (await guest.post("/openstack/latest/password", content=b"again")
                ).status_code == 409
        assert (await guest.get("/openstack/latest/password")).text == "s3cret"
    async with _client(api, ip_two) as guest:
        meta = (await guest.get("/openstack/latest/meta_data.json")).json()
        assert meta["uuid"] == two["id"]
        assert (await guest.get("/openstack/latest/user_data")).status_code == 404
    async with _client(api, "10.9.9.9") as stranger:
        assert (await stranger.get("/openstack/latest/meta_data.json")).status_code == 404
    await api.request("DELETE", f"/compute/v2.1/servers/{one['id']}")
    for _ in range(100):
        async with _client(api, ip_one) as gone:
            if (await gone.get("/openstack/latest/meta_data.json")).status_code == 404:
                break
    else:
        raise AssertionError("a deleted instance's metadata is still served")


async def test_ec2_security_groups_lists_the_instance_groups(api: Api) -> None:
    resp = await api.request("POST", "/compute/v2.1/os-security-groups", json={
        "security_group": {"name": "web", "description": "web servers"}})
    assert resp.status_code == 200, resp.text
    server = await boot(api, "grouped", version="2.37", networks="auto",
                        security_groups=[{"name": "default"}, {"name": "web"}])
    address = next(iter(server["addresses"].values()))[0]["addr"]
    async with _client(api, address) as guest:
        resp = await guest.get("/latest/meta-data/security-groups")
        assert resp.status_code == 200
        assert resp.text.split("\n") == ["default", "web"]
        listing = (await guest.get("/latest/meta-data/")).text.split("\n")
        assert "security-groups" in listing
