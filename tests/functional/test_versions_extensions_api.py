"""The versions documents (v2.0 and v2.1), the legacy /v2 endpoint, and /extensions."""

from __future__ import annotations

import httpx

from novalet.api.compute import microversions
from tests.functional.conftest import Api

BASE = "http://novalet.test/compute"


async def test_versions_list_v2_0_first_then_v2_1(api: Api) -> None:
    resp = await api.client.get("/compute/")
    assert resp.status_code == 200, resp.text
    v20, v21 = resp.json()["versions"]
    assert (v20["id"], v20["status"], v20["version"], v20["min_version"]) == (
        "v2.0", "DEPRECATED", "", "")
    assert (v21["id"], v21["status"]) == ("v2.1", "CURRENT")
    assert (v21["min_version"], v21["version"]) == (str(microversions.MIN),
                                                    str(microversions.MAX))
    assert v20["links"] == [{"rel": "self", "href": f"{BASE}/v2/"}]
    assert v21["links"] == [{"rel": "self", "href": f"{BASE}/v2.1/"}]


async def test_each_self_link_leads_to_a_document_with_the_same_link(api: Api) -> None:
    """What Tempest's test_get_version_details follows."""
    for version in (await api.client.get("/compute/")).json()["versions"]:
        [link] = [x for x in version["links"] if x["rel"] == "self"]
        resp = await api.client.get(link["href"].removeprefix("http://novalet.test"))
        assert resp.status_code == 200, resp.text
        doc = resp.json()["version"]
        assert doc["id"] == version["id"]
        assert [x for x in doc["links"] if x["rel"] == "self"] == [link]
        assert doc["media-types"][0]["base"] == "application/json"
    v2 = (await api.client.get("/compute/v2")).json()["version"]
    assert v2["media-types"][0]["type"] == "application/vnd.openstack.compute+json;version=2"


def _no_microversion_headers(resp: httpx.Response) -> bool:
    return not ({"openstack-api-version", "x-openstack-nova-api-version"}
                & {h.lower() for h in resp.headers})


async def test_legacy_v2_serves_the_api_at_the_base_version(api: Api) -> None:
    """/v2 ignores microversion headers and sends none: flavors show no
    description (2.55), whatever version was asked for."""
    resp = await api.request("GET", "/compute/v2/flavors/1", version="2.100")
    assert resp.status_code == 200, resp.text
    assert "description" not in resp.json()["flavor"]
    assert _no_microversion_headers(resp)
    assert resp.headers["x-compute-request-id"] == resp.headers["x-openstack-request-id"]
    newer = await api.request("GET", "/compute/v2.1/flavors/1", version="2.100")
    assert "description" in newer.json()["flavor"]
    assert not _no_microversion_headers(newer)


async def test_legacy_v2_authenticates_authorizes_and_404s_as_v2_1(api: Api) -> None:
    assert (await api.client.get("/compute/v2/servers")).status_code == 401
    assert (await api.request("GET", "/compute/v2/os-services")).status_code == 403
    assert (await api.request("GET", "/compute/v2/os-services", user="admin")
            ).status_code == 200
    resp = await api.request("GET", "/compute/v2/servers/no-such-server")
    assert resp.status_code == 404 and "itemNotFound" in resp.json()
    # the network proxies (gone from 2.36 on v2.1) are there: v2 is the base version
    resp = await api.request("GET", "/compute/v2/os-floating-ip-pools", version="2.100")
    assert resp.status_code == 200, resp.text


async def test_extensions_list_and_show(api: Api) -> None:
    resp = await api.request("GET", "/compute/v2.1/extensions")
    assert resp.status_code == 200, resp.text
    extensions = resp.json()["extensions"]
    assert "Hosts" in [e["name"] for e in extensions]
    aliases = [e["alias"] for e in extensions]
    assert aliases == sorted(aliases) and len(set(aliases)) == len(aliases)
    assert "os-instance_usage_audit_log" in aliases
    for ext in extensions:
        assert set(ext) == {"alias", "name", "description", "links", "namespace", "updated"}
    resp = await api.request("GET", "/compute/v2.1/extensions/os-consoles", version="2.100")
    assert resp.status_code == 200 and resp.json()["extension"]["alias"] == "os-consoles"
    resp = await api.request("GET", "/compute/v2.1/extensions/os-nothing")
    assert resp.status_code == 404 and "os-nothing" in resp.text
    assert (await api.client.get("/compute/v2.1/extensions")).status_code == 401


async def test_legacy_v2_drops_unknown_body_properties(api: Api) -> None:
    """As Nova's v2-compatible mode: where v2.1 refuses an unknown property, v2 drops
    it; a schema of patterns (metadata keys) still refuses what none matches."""
    body = {"keypair": {"name": "relaxed", "public_key": _KEY, "extra": 1}}
    resp = await api.request("POST", "/compute/v2.1/os-keypairs", json=body)
    assert resp.status_code == 400, resp.text
    resp = await api.request("POST", "/compute/v2/os-keypairs", json=body)
    assert resp.status_code in (200, 201), resp.text
    assert resp.json()["keypair"]["name"] == "relaxed"
    # the v2.1 request that follows is strict again
    body["keypair"]["name"] = "strict"
    resp = await api.request("POST", "/compute/v2.1/os-keypairs", json=body)
    assert resp.status_code == 400, resp.text


_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm9TlnBCcw9xk8JAm/A0sX/Lw6eiN1lLEqMGO/8EWOd "
        "test@novalet")
