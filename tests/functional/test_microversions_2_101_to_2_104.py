"""2.102 (flavors without rxtx_factor and disabled, a name filter, strict query
strings) and 2.104 (unpinning and re-pinning a server's availability zone), each
on both sides of its boundary. 2.101 and 2.103 change routes not served here."""

from __future__ import annotations

from tests.functional.conftest import Api, boot

F = "/compute/v2.1/flavors"
S = "/compute/v2.1/servers"


async def test_flavors_lose_rxtx_factor_and_disabled_at_2_102(api: Api) -> None:
    for path in (f"{F}/1", f"{F}/detail"):
        old = (await api.request("GET", path, version="2.101")).json()
        new = (await api.request("GET", path, version="2.102")).json()
        old_flavor = old.get("flavor") or old["flavors"][0]
        new_flavor = new.get("flavor") or new["flavors"][0]
        assert {"rxtx_factor", "OS-FLV-DISABLED:disabled"} <= set(old_flavor)
        assert not {"rxtx_factor", "OS-FLV-DISABLED:disabled"} & set(new_flavor)
    body = {"flavor": {"name": "fast", "ram": 64, "vcpus": 1, "disk": 1, "rxtx_factor": 2.0}}
    resp = await api.request("POST", F, user="admin", version="2.102", json=body)
    assert resp.status_code == 400 and "rxtx_factor" in resp.text
    resp = await api.request("POST", F, user="admin", version="2.101", json=body)
    assert resp.status_code == 200 and resp.json()["flavor"]["rxtx_factor"] == 2.0
    resp = await api.request("GET", f"{F}?sort_key=rxtx_factor", version="2.102")
    assert resp.status_code == 400
    resp = await api.request("GET", f"{F}?sort_key=rxtx_factor", version="2.101")
    assert resp.status_code == 200


async def test_flavor_name_filter_from_2_102(api: Api) -> None:
    resp = await api.request("GET", f"{F}?name=^m1\\.(tiny|small)$", version="2.102")
    assert sorted(f["name"] for f in resp.json()["flavors"]) == ["m1.small", "m1.tiny"]
    resp = await api.request("GET", f"{F}/detail?name=medium", version="2.102")
    assert [f["name"] for f in resp.json()["flavors"]] == ["m1.medium"]
    resp = await api.request("GET", f"{F}?name=(", version="2.102")
    assert resp.status_code == 400
    resp = await api.request("GET", f"{F}?name=medium", version="2.101")
    assert resp.status_code == 400  # 2.75's strict list query does not know it yet


async def test_every_get_refuses_unknown_query_parameters_from_2_102(api: Api) -> None:
    server = await boot(api)
    for path in (f"{S}/{server['id']}", f"{F}/1", "/compute/v2.1/os-availability-zone",
                 f"{S}/{server['id']}/metadata"):
        resp = await api.request("GET", f"{path}?bogus=1", version="2.101")
        assert resp.status_code == 200, (path, resp.text)
        resp = await api.request("GET", f"{path}?bogus=1", version="2.102")
        assert resp.status_code == 400, (path, resp.text)
        assert "bogus" in resp.json()["badRequest"]["message"]
    resp = await api.request("GET", "/compute/v2.1/os-keypairs?limit=5", version="2.102")
    assert resp.status_code == 200  # a known one


async def _pin(api: Api, sid: str, zone: str | None, version: str = "2.104",
               user: str = "demo") -> tuple[int, dict[str, object]]:
    resp = await api.request("PUT", f"{S}/{sid}", user=user, version=version,
                             json={"server": {"pinned_availability_zone": zone}})
    return resp.status_code, resp.json()


async def test_unpin_and_repin_the_availability_zone_from_2_104(api: Api, other: str) -> None:
    sid = (await boot(api, availability_zone="nova"))["id"]
    status, body = await _pin(api, sid, None, version="2.103")
    assert status == 400
    for _ in range(2):  # pinning to the zone it is pinned to changes nothing
        status, body = await _pin(api, sid, "nova")
        assert status == 200 and body["server"]["pinned_availability_zone"] == "nova"
    status, body = await _pin(api, sid, "elsewhere")
    assert status == 409 and "Unpin first" in body["conflictingRequest"]["message"]
    status, body = await _pin(api, sid, None)
    assert status == 200 and body["server"]["pinned_availability_zone"] is None
    status, body = await _pin(api, sid, "elsewhere")
    assert status == 409 and body["conflictingRequest"]["message"] == (
        "Server can only be pinned to its current availability zone 'nova', but "
        "'elsewhere' was requested.")
    status, body = await _pin(api, sid, "nova")
    assert status == 200 and body["server"]["pinned_availability_zone"] == "nova"
    resp = await api.request("GET", f"{S}/{sid}", version="2.104")
    assert resp.json()["server"]["pinned_availability_zone"] == "nova"
    for bad in ("", " nova", 5):
        resp = await api.request("PUT", f"{S}/{sid}", version="2.104",
                                 json={"server": {"pinned_availability_zone": bad}})
        assert resp.status_code == 400, bad
    assert (await _pin(api, sid, None, user="other"))[0] == 404
