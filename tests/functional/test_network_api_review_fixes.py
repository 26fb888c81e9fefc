"""Reproducers of the first review of the network API over HTTP: the bulk cap, the
networks quota (Neutron's OverQuota, 409, all or none) and page_reverse=1."""

from __future__ import annotations

from tests.functional.conftest import Api
from tests.functional.test_network_api_v2 import N, create, neutron_error


async def names(api: Api) -> list[str]:
    resp = await api.request("GET", f"{N}/networks")
    return [n["name"] for n in resp.json()["networks"]]


async def test_a_bulk_of_more_than_a_hundred_is_400(api: Api) -> None:
    resp = await api.request("POST", f"{N}/networks", json={"networks": [
        {"name": f"n{i}"} for i in range(101)]})
    assert "at most 100" in neutron_error(resp, 400, "HTTPBadRequest")
    assert not any(n.startswith("n") and n[1:].isdigit() for n in await names(api))


async def test_over_the_networks_quota_is_409_and_makes_nothing(api: Api) -> None:
    api.cloud.conf.set("quota", "networks", 2)
    await create(api, name="first")
    resp = await api.request("POST", f"{N}/networks", json={"networks": [
        {"name": "bulk1"}, {"name": "bulk2"}]})
    assert "Quota exceeded" in neutron_error(resp, 409, "OverQuota")
    assert "bulk1" not in await names(api)
    await create(api, name="second")
    resp = await api.request("POST", f"{N}/networks", json={"network": {"name": "third"}})
    neutron_error(resp, 409, "OverQuota")


async def test_page_reverse_1_is_true(api: Api) -> None:
    for name in ("a", "b", "c"):
        await create(api, name=name)
    query = "sort_key=name&sort_dir=asc&limit=1&marker={}&page_reverse={}"
    (c,) = [n for n in (await api.request("GET", f"{N}/networks")).json()["networks"]
            if n["name"] == "c"]
    pages = []
    for flag in ("1", "true"):
        resp = await api.request("GET", f"{N}/networks?" + query.format(c["id"], flag))
        assert resp.status_code == 200, resp.text
        pages.append([n["name"] for n in resp.json()["networks"]])
    assert pages == [["b"], ["b"]]
