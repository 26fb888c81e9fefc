"""accessIPv4 and accessIPv6 are kept in their shortest form, as Nova's column type
keeps them: an IPv6 address written out in full (Tempest's
0000:0000:0000:0000:0000:babe:220.12.22.2, 41 characters) fits the 39-character
column, and PostgreSQL no longer refuses it with a 500."""

from __future__ import annotations

from tests.functional.conftest import Api, boot

S = "/compute/v2.1/servers"
LONG_V6 = "0000:0000:0000:0000:0000:babe:220.12.22.2"


async def test_a_long_ipv6_address_is_stored_and_shown_shortened(api: Api) -> None:
    server = await boot(api, "long-v6", accessIPv4="192.0.2.10", accessIPv6=LONG_V6)
    shown = (await api.request("GET", f"{S}/{server['id']}")).json()["server"]
    assert shown["accessIPv6"] == "::babe:dc0c:1602"
    assert shown["accessIPv4"] == "192.0.2.10"


async def test_update_shortens_too(api: Api) -> None:
    server = await boot(api, "upd-v6")
    resp = await api.request("PUT", f"{S}/{server['id']}", json={"server": {
        "accessIPv6": "2001:0db8:0000:0000:0000:0000:0000:0001"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["server"]["accessIPv6"] == "2001:db8::1"
