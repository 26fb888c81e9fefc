"""Lists of the network API (api/network/listing.py) through /v2.0/networks: filters,
fields, sorting, and paging with links both ways, as Neutron answers them."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from novalet.api.network.listing import MAX_VALUES
from tests.functional.conftest import Api
from tests.functional.test_network_api_v2 import N, create, neutron_error


async def listed(api: Api, query: str, user: str = "demo") -> dict[str, Any]:
    resp = await api.request("GET", f"{N}/networks?{query}", user=user)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def names(body: dict[str, Any]) -> list[str]:
    return [n["name"] for n in body["networks"]]


@pytest.fixture
async def five(api: Api) -> list[dict[str, Any]]:
    """Networks n1..n5 of demo, described "page"; n2 and n4 administratively down."""
    return [await create(api, name=f"n{i}", description="page", admin_state_up=i % 2 == 1)
            for i in range(1, 6)]


async def test_filters_on_attributes_with_repeats_meaning_any(api: Api, five: Any) -> None:
    assert sorted(names(await listed(api, "name=n1&name=n3"))) == ["n1", "n3"]
    body = await listed(api, "description=page&admin_state_up=false")
    assert sorted(names(body)) == ["n2", "n4"]
    assert sorted(names(await listed(api, "description=page&admin_state_up=0"))) == ["n2", "n4"]
    assert names(await listed(api, f"id={five[4]['id']}&name=")) == ["n5"]  # empty ignored
    assert names(await listed(api, "name=nothing")) == []


@pytest.mark.parametrize(("query", "words"), [
    ("color=blue", "[color] is invalid attribute for filtering"),
    ("shared=perhaps", "cannot be converted to boolean"),
    ("mtu=big", "is not an integer"),
    ("sort_key=name", "The number of sort_keys and sort_dirs must be same"),
    ("sort_key=color&sort_dir=asc", "invalid attribute for sort_keys"),
    ("sort_key=subnets&sort_dir=asc", "invalid attribute for sort_keys"),
    ("sort_key=name&sort_dir=up", "invalid value for sort_dirs"),
    ("limit=-1", "Limit must be an integer 0 or greater"),
    ("limit=many", "Limit must be an integer 0 or greater"),
    ("&".join(f"name=n{i}" for i in range(MAX_VALUES + 1)), "Too many values for name"),
])
async def test_bad_list_queries_are_400(api: Api, query: str, words: str) -> None:
    resp = await api.request("GET", f"{N}/networks?{query}")
    assert words in neutron_error(resp, 400, "BadRequest")


async def test_fields_keep_only_those_attributes(api: Api, five: Any) -> None:
    body = await listed(api, "description=page&fields=id&fields=name&fields=nonsense")
    assert all(set(n) == {"id", "name"} for n in body["networks"])
    assert len(body["networks"]) == 5
    resp = await api.request("GET", f"{N}/networks/{five[0]['id']}?fields=mtu")
    assert resp.json() == {"network": {"mtu": 1500}}


async def test_sorting_by_several_keys_with_directions(api: Api, five: Any) -> None:
    body = await listed(api, "description=page&sort_key=name&sort_dir=desc")
    assert names(body) == ["n5", "n4", "n3", "n2", "n1"]
    body = await listed(api, "description=page&sort_key=admin_state_up&sort_dir=asc"
                             "&sort_key=name&sort_dir=desc")
    assert names(body) == ["n4", "n2", "n5", "n3", "n1"]


def _link(body: dict[str, Any], rel: str) -> str | None:
    return next((link["href"] for link in body.get("networks_links", [])
                 if link["rel"] == rel), None)


async def _follow(api: Api, href: str) -> dict[str, Any]:
    parts = urlsplit(href)
    assert parts.scheme == "http" and parts.netloc == "novalet.test"
    return await listed(api, parts.query)


async def test_paging_forward_and_back_with_links(api: Api, five: Any) -> None:
    query = "description=page&sort_key=name&sort_dir=asc&limit=2"
    first = await listed(api, query)
    assert names(first) == ["n1", "n2"]
    nxt = _link(first, "next")
    assert nxt is not None and _link(first, "previous") is not None
    assert parse_qs(urlsplit(nxt).query)["description"] == ["page"]  # the query carries on
    second = await _follow(api, nxt)
    assert names(second) == ["n3", "n4"]
    third = await _follow(api, str(_link(second, "next")))
    assert names(third) == ["n5"]
    assert _link(third, "next") is None  # a short forward page is the last
    back = await _follow(api, str(_link(third, "previous")))
    assert names(back) == ["n3", "n4"]
    start = await _follow(api, str(_link(back, "previous")))
    assert names(start) == ["n1", "n2"]
    assert _link(start, "next") is not None
    body = await listed(api, "description=page&limit=100000")
    assert len(body["networks"]) == 5 and _link(body, "next") is None


async def test_paging_follows_the_sort_order_and_fields(api: Api, five: Any) -> None:
    body = await listed(api, "description=page&sort_key=name&sort_dir=desc&limit=3&fields=name")
    assert body["networks"] == [{"name": "n5"}, {"name": "n4"}, {"name": "n3"}]
    marker = parse_qs(urlsplit(str(_link(body, "next"))).query)["marker"]
    assert marker == [five[2]["id"]]  # ids drive the links even when not asked for
    rest = await _follow(api, str(_link(body, "next")))
    assert rest["networks"] == [{"name": "n2"}, {"name": "n1"}]


async def test_a_marker_that_is_no_visible_network_is_404(api: Api, other: str) -> None:
    resp = await api.request("GET", f"{N}/networks?limit=1&marker=no-such-net")
    neutron_error(resp, 404, "NetworkNotFound")
    theirs = await create(api, user="other", name="theirs")
    resp = await api.request("GET", f"{N}/networks?limit=1&marker={theirs['id']}")
    neutron_error(resp, 404, "NetworkNotFound")


async def test_filters_never_reach_what_the_caller_cannot_see(api: Api) -> None:
    await create(api, user="admin", name="flat-admin")
    assert names(await listed(api, "provider:network_type=flat")) == []
    admin = await listed(api, "provider:network_type=flat&name=flat-admin", user="admin")
    assert names(admin) == ["flat-admin"]
