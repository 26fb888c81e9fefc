"""The app's own rules: who is asking, what they may post, what happens on errors."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from novalet.metadata import app as metadata_app
from novalet.metadata.app import client_address, create_app, normalize_address, parse_networks
from novalet.metadata.content import InstanceMetadata
from novalet.metadata.lookup import StaticLookup
from tests.unit.metadata.samples import OTHER_UUID, UUID, make_md, make_vif


def client(app: object, address: str = "10.0.0.5") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://169.254.169.254")


PROXIES = parse_networks(["192.0.2.1", "198.51.100.0/24"])


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("10.0.0.5", None, "10.0.0.5"),
    ("10.0.0.5", "10.0.0.9", "10.0.0.5"),             # untrusted peer: the header is ignored
    ("192.0.2.1", "10.0.0.9", "10.0.0.9"),
    ("192.0.2.1", "10.0.0.9, 198.51.100.7", "10.0.0.9"),   # past every trusted hop
    ("192.0.2.1", "10.0.0.1, 10.0.0.9", "10.0.0.9"),   # the left hop is the guest's claim
    ("192.0.2.1", "", "192.0.2.1"),
    ("192.0.2.1", "198.51.100.7", "198.51.100.7"),   # only proxies: the farthest one
    ("::ffff:10.0.0.5", None, "10.0.0.5"),
    (None, "10.0.0.9", None),
])
def test_client_address(peer: str | None, forwarded: str | None, expected: str | None) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_no_trusted_proxy_by_default() -> None:
    assert client_address("127.0.0.1", "10.0.0.5", []) == "127.0.0.1"


def test_normalize_address() -> None:
    assert normalize_address(" 10.0.0.5 ") == "10.0.0.5"
    assert normalize_address("FD00:0::1") == "fd00::1"
    assert normalize_address("not-an-ip") == "not-an-ip"


def test_bad_trusted_proxy_is_named() -> None:
    with pytest.raises(ValueError, match="'nonsense' is not an IP address or CIDR"):
        parse_networks(["10.0.0.1", "nonsense"])


async def test_forwarded_for_from_a_trusted_proxy_picks_the_instance() -> None:
    other = make_md(uuid=OTHER_UUID, vifs=[make_vif(fixed_ip="10.0.0.9")])
    app = create_app(StaticLookup([make_md(), other]), trusted_proxies=["127.0.0.1"])
    async with client(app, "127.0.0.1") as http:
        resp = await http.get("/latest/meta-data/local-ipv4",
                              headers={"X-Forwarded-For": "10.0.0.9"})
    assert resp.status_code == 200 and resp.text == "10.0.0.9"


async def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    other = make_md(uuid=OTHER_UUID, vifs=[make_vif(fixed_ip="10.0.0.9")])
    app = create_app(StaticLookup([make_md(), other]))
    async with client(app, "10.0.0.5") as http:
        resp = await http.get("/latest/meta-data/local-ipv4",
                              headers={"X-Forwarded-For": "10.0.0.9"})
    assert resp.text == "10.0.0.5"


async def test_a_lookup_answering_with_another_instance_is_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    async def wrong(address: str) -> InstanceMetadata | None:
        return make_md()   # holds 10.0.0.5 only

    async with client(create_app(wrong), "10.0.0.77") as http:
        resp = await http.get("/openstack/latest/meta_data.json")
    assert resp.status_code == 404 and UUID not in resp.text
    assert "returned instance" in caplog.text


async def test_a_plain_lookup_function_serves_but_takes_no_password() -> None:
    async def find(address: str) -> InstanceMetadata | None:
        return make_md() if address == "10.0.0.5" else None

    async with client(create_app(find)) as http:
        assert (await http.get("/openstack/latest/meta_data.json")).json()["uuid"] == UUID
        resp = await http.post("/openstack/latest/password", content=b"secret")
    assert resp.status_code == 403 and "does not store passwords" in resp.text


async def test_vendor_data_from_the_operator_under_the_instances_own() -> None:
    lookup = StaticLookup([make_md(vendor_data={"mine": 1, "both": "instance"})])
    app = create_app(lookup, vendor_data={"cloud": "novalet", "both": "operator"})
    async with client(app) as http:
        resp = await http.get("/openstack/latest/vendor_data.json")
    assert resp.json() == {"cloud": "novalet", "mine": 1, "both": "instance"}


async def test_content_types() -> None:
    async with client(create_app(StaticLookup([make_md()]))) as http:
        json_resp = await http.get("/openstack/latest/network_data.json")
        text_resp = await http.get("/latest/meta-data/")
    assert json_resp.headers["content-type"] == "application/json"
    assert json.loads(json_resp.content)["links"][0]["ethernet_mac_address"]
    assert text_resp.headers["content-type"].startswith("text/plain")


async def test_methods_other_than_get_and_password_post() -> None:
    async with client(create_app(StaticLookup([make_md()]))) as http:
        post = await http.post("/openstack/latest/meta_data.json", content=b"x")
        put = await http.put("/openstack/latest/password", content=b"x")
        old = await http.post("/openstack/2012-08-10/password", content=b"x")
        head = await http.head("/openstack/latest/meta_data.json")
    assert post.status_code == put.status_code == old.status_code == 405
    assert "only on openstack/<version>/password" in post.text
    assert head.status_code == 200


@pytest.mark.parametrize(("body", "message"), [
    (b"x" * 257, "longer than 256 bytes"), (b"", "empty"), (b"\xff\xfe", "not UTF-8")])
async def test_password_posts_that_are_refused(body: bytes, message: str) -> None:
    lookup = StaticLookup([make_md()])
    async with client(create_app(lookup)) as http:
        resp = await http.post("/openstack/latest/password", content=body)
    assert resp.status_code == 400 and message in resp.text
    assert lookup.get(UUID).password is None


async def test_a_password_of_256_bytes_is_stored() -> None:
    lookup = StaticLookup([make_md()])
    async with client(create_app(lookup)) as http:
        resp = await http.post("/openstack/latest/password", content=b"p" * 256)
    assert resp.status_code == 200 and lookup.get(UUID).password == "p" * 256


async def test_a_body_the_service_does_not_read_closes_the_connection() -> None:
    """Issue 14: a guest's body is read only to store a password (256 bytes at most);
    any other is answered with Connection: close, so the rest is never read."""
    lookup = StaticLookup([make_md()])
    async with client(create_app(lookup)) as http:
        ignored = [await http.request("GET", "/latest/meta-data/hostname", content=b"x"),
                   await http.post("/openstack/latest/meta_data.json", content=b"x"),
                   await http.post("/openstack/latest/password", content=b"x" * 257)]
        plain = await http.get("/latest/meta-data/hostname")
        stored = await http.post("/openstack/latest/password", content=b"secret")
        again = await http.post("/openstack/latest/password", content=b"other")
    assert [r.status_code for r in ignored] == [200, 405, 400]
    assert all(r.headers["connection"] == "close" for r in ignored + [again])
    assert again.status_code == 409
    assert "connection" not in plain.headers and "connection" not in stored.headers


async def test_losing_a_password_race_is_a_conflict() -> None:
    class Racing(StaticLookup):
        async def set_password(self, instance_uuid: str, password: str) -> bool:
            return False   # another request stored one after our lookup

    async with client(create_app(Racing([make_md()]))) as http:
        resp = await http.post("/openstack/latest/password", content=b"secret")
    assert resp.status_code == 409


async def test_a_failing_lookup_is_a_logged_500_with_a_request_id(
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken(address: str) -> InstanceMetadata | None:
        raise RuntimeError("database is down")

    async with client(create_app(broken)) as http:
        resp = await http.get("/openstack/latest/meta_data.json")
    request_id = resp.headers["x-openstack-request-id"]
    assert resp.status_code == 500 and request_id in resp.text
    assert "database is down" in caplog.text


async def test_every_request_is_logged_with_the_instance(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=metadata_app.__name__)
    async with client(create_app(StaticLookup([make_md()]))) as http:
        await http.get("/latest/meta-data/hostname")
        await http.get("/latest/meta-data/nothing")
    lines = [r.getMessage() for r in caplog.records if r.name == metadata_app.__name__]
    assert any("/latest/meta-data/hostname from 10.0.0.5: 200" in line and UUID in line
               for line in lines)
    assert any("/latest/meta-data/nothing from 10.0.0.5: 404" in line and UUID in line
               for line in lines)


async def test_local_ipv4_is_the_source_address_when_the_lookup_gives_none() -> None:
    async def find(address: str) -> InstanceMetadata | None:
        return make_md(vifs=[])

    async with client(create_app(find), "10.0.0.42") as http:
        resp = await http.get("/latest/meta-data/local-ipv4")
    assert resp.text == "10.0.0.42"
