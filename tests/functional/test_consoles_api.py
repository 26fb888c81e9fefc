"""The consoles API: POST /servers/{id}/remote-consoles (2.6 on), the old
os-get*Console actions (2.1 to 2.5) and GET /os-console-auth-tokens/{token}."""

from __future__ import annotations

import asyncio
import hashlib
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from sqlalchemy import select

from novalet.console.types import DISPLAY_OF, PROTOCOL_OF
from novalet.db.models import ConsoleAuthToken
from tests.functional.conftest import Api, boot, delete_server, wait_for
from tests.functional.test_policy_roles import make_user

C = "/compute/v2.1"
TYPES = ["novnc", "xvpvnc", "spice-html5", "serial"]
ACTION_OF = {"novnc": "os-getVNCConsole", "xvpvnc": "os-getVNCConsole",
             "spice-html5": "os-getSPICEConsole", "serial": "os-getSerialConsole"}
# What a client's first read from the fake driver's display of each kind gives.
GREETING = {"vnc": lambda uuid: b"RFB 003.008\n",
            "spice": lambda uuid: f"fake-spice {uuid}\n".encode(),
            "serial": lambda uuid: f"fake-serial {uuid}\n".encode()}


async def remote_console(api: Api, server_id: str, protocol: str, console_type: str,
                         version: str = "2.6", user: str = "demo") -> httpx.Response:
    return await api.request("POST", f"{C}/servers/{server_id}/remote-consoles", user=user,
                             version=version, json={"remote_console": {
                                 "protocol": protocol, "type": console_type}})


async def action(api: Api, server_id: str, key: str, console_type: str,
                 version: str = "2.1", user: str = "demo") -> httpx.Response:
    return await api.request("POST", f"{C}/servers/{server_id}/action", user=user,
                             version=version, json={key: {"type": console_type}})


async def show_token(api: Api, token: str, version: str = "2.31",
                     user: str = "admin") -> httpx.Response:
    return await api.request("GET", f"{C}/os-console-auth-tokens/{token}", user=user,
                             version=version)


def token_in(console_type: str, url: str) -> str:
    """The token in a console URL, checking the URL has its type's shape."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if console_type == "novnc":
        assert (parts.scheme, parts.path) == ("http", "/vnc_lite.html"), url
        inner = unquote(query["path"][0])  # noVNC opens ws://host:port/?token=…
        assert inner.startswith("?token="), url
        return inner.removeprefix("?token=")
    if console_type == "xvpvnc":
        assert parts.scheme == "vnc", url
        password = query["VncPassword"][0]
        assert len(password) == 8, url  # a VNC password
        return password
    expected = {"spice-html5": ("http", "/spice_auto.html"), "serial": ("ws", "/")}
    assert (parts.scheme, parts.path) == expected[console_type], url
    return query["token"][0]


@pytest.fixture
async def server(api: Api) -> dict[str, Any]:
    return await boot(api, "console-vm")


async def _first_bytes(host: str, port: int, count: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return await asyncio.wait_for(reader.readexactly(count), 5)
    finally:
        writer.close()


# --- remote-consoles --------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.6", "2.8"])
@pytest.mark.parametrize("console_type", TYPES)
async def test_remote_console_of_each_type(api: Api, server: dict[str, Any], version: str,
                                           console_type: str) -> None:
    protocol = PROTOCOL_OF[console_type]
    resp = await remote_console(api, server["id"], protocol, console_type, version)
    assert resp.status_code == 200, resp.text
    body = resp.json()["remote_console"]
    assert (body["protocol"], body["type"]) == (protocol, console_type)
    token = token_in(console_type, body["url"])

    # The token leads to this server's display of that kind on the fake host.
    shown = await show_token(api, token)
    assert shown.status_code == 200, shown.text
    console = shown.json()["console"]
    kind = DISPLAY_OF[console_type]
    target = await api.cloud.compute.driver.get_console(server["id"], kind)
    assert console == {"instance_uuid": server["id"], "host": "127.0.0.1",
                       "port": target.port, "internal_access_path": None}
    expected = GREETING[kind](server["id"])
    assert await _first_bytes(console["host"], console["port"], len(expected)) == expected


async def test_each_request_gives_a_new_token(api: Api, server: dict[str, Any]) -> None:
    urls = {(await remote_console(api, server["id"], "serial", "serial")).json()[
        "remote_console"]["url"] for _ in range(3)}
    assert len(urls) == 3


async def test_remote_consoles_is_404_below_2_6(api: Api, server: dict[str, Any]) -> None:
    resp = await remote_console(api, server["id"], "vnc", "novnc", version="2.5")
    assert resp.status_code == 404, resp.text


async def test_protocol_and_type_must_match(api: Api, server: dict[str, Any]) -> None:
    for protocol, console_type in [("vnc", "serial"), ("vnc", "spice-html5"),
                                   ("spice", "novnc"), ("serial", "xvpvnc")]:
        resp = await remote_console(api, server["id"], protocol, console_type)
        assert resp.status_code == 400, resp.text
        assert resp.json()["badRequest"]["message"] == f"Invalid console type {console_type}"


async def test_bad_bodies_are_400(api: Api, server: dict[str, Any]) -> None:
    for body in [{}, {"remote_console": {}}, {"remote_console": {"protocol": "vnc"}},
                 {"remote_console": {"protocol": "telnet", "type": "novnc"}},
                 {"remote_console": {"protocol": "vnc", "type": "novnc", "extra": 1}},
                 {"remote_console": {"protocol": "mks", "type": "webmks"}},  # only from 2.8
                 {"remote_console": {"protocol": "vnc", "type": 5}}, [],
                 {"console": {"protocol": "vnc", "type": "novnc"}}]:
        resp = await api.request("POST", f"{C}/servers/{server['id']}/remote-consoles",
                                 version="2.6", json=body)
        assert resp.status_code == 400, (body, resp.text)


async def test_types_no_host_serves_are_400(api: Api, server: dict[str, Any]) -> None:
    for protocol, console_type, version in [("rdp", "rdp-html5", "2.6"),
                                            ("mks", "webmks", "2.8"),
                                            ("spice", "spice-direct", "2.99")]:
        resp = await remote_console(api, server["id"], protocol, console_type, version)
        assert resp.status_code == 400, resp.text
        assert resp.json()["badRequest"]["message"] == (
            f"Unavailable console type {console_type}.")


async def test_a_disabled_display_is_400(api: Api, server: dict[str, Any]) -> None:
    api.cloud.conf.set("vnc", "enabled", False)
    for console_type in ("novnc", "xvpvnc"):
        resp = await remote_console(api, server["id"], "vnc", console_type)
        assert resp.status_code == 400, resp.text
        assert resp.json()["badRequest"]["message"] == (
            f"Unavailable console type {console_type}.")
    resp = await action(api, server["id"], "os-getVNCConsole", "novnc")
    assert resp.status_code == 400, resp.text
    assert (await remote_console(api, server["id"], "serial", "serial")).status_code == 200


async def test_a_stopped_server_is_409(api: Api, server: dict[str, Any]) -> None:
    resp = await api.request("POST", f"{C}/servers/{server['id']}/action",
                             json={"os-stop": None})
    assert resp.status_code == 202, resp.text
    await wait_for(api, server["id"], "SHUTOFF")
    resp = await remote_console(api, server["id"], "vnc", "novnc")
    assert resp.status_code == 409, resp.text
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Instance {server['id']} is not ready")


async def test_a_building_server_is_409(api: Api) -> None:
    api.cloud.conf.set("fake", "spawn_delay", 0.5)
    server = await boot(api, "slow", wait=None)
    resp = await remote_console(api, server["id"], "serial", "serial")
    assert resp.status_code == 409, resp.text
    resp = await action(api, server["id"], "os-getSerialConsole", "serial")
    assert resp.status_code == 409, resp.text
    await wait_for(api, server["id"], "ACTIVE")
    assert (await remote_console(api, server["id"], "serial", "serial")).status_code == 200


async def test_a_paused_server_still_has_its_console(api: Api, server: dict[str, Any]) -> None:
    resp = await api.request("POST", f"{C}/servers/{server['id']}/action", json={"pause": None})
    assert resp.status_code == 202, resp.text
    await wait_for(api, server["id"], "PAUSED")
    assert (await remote_console(api, server["id"], "vnc", "novnc")).status_code == 200


async def test_unknown_and_other_projects_servers_are_404(api: Api, server: dict[str, Any]
                                                          ) -> None:
    resp = await remote_console(api, "00000000-0000-0000-0000-000000000000", "vnc", "novnc")
    assert resp.status_code == 404, resp.text
    project = await api.request("POST", "/identity/v3/projects", user="admin", json={
        "project": {"name": "alt", "domain_id": "default"}})
    assert project.status_code == 201, project.text
    await make_user(api, "alt", "member", project="alt")
    resp = await remote_console(api, server["id"], "vnc", "novnc", user="alt")
    assert resp.status_code == 404, resp.text
    resp = await action(api, server["id"], "os-getVNCConsole", "novnc", user="alt")
    assert resp.status_code == 404, resp.text
    # An admin reaches every project's servers.
    resp = await remote_console(api, server["id"], "vnc", "novnc", user="admin")
    assert resp.status_code == 200, resp.text


async def test_a_reader_may_not_open_consoles(api: Api, server: dict[str, Any]) -> None:
    await make_user(api, "reader", "reader")
    for resp in (await remote_console(api, server["id"], "vnc", "novnc", user="reader"),
                 await action(api, server["id"], "os-getVNCConsole", "novnc", user="reader")):
        assert resp.status_code == 403, resp.text
        assert resp.json()["forbidden"]["message"] == (
            "Policy doesn't allow os_compute_api:os-remote-consoles to be performed.")


# --- the old actions ---------------------------------------------------------------


@pytest.mark.parametrize("console_type", TYPES)
async def test_old_action_of_each_type(api: Api, server: dict[str, Any],
                                       console_type: str) -> None:
    resp = await action(api, server["id"], ACTION_OF[console_type], console_type)
    assert resp.status_code == 200, resp.text
    console = resp.json()["console"]
    assert console["type"] == console_type
    token = token_in(console_type, console["url"])
    shown = await show_token(api, token)
    assert shown.status_code == 200 and shown.json()["console"]["instance_uuid"] == server["id"]


async def test_old_actions_are_404_from_2_6(api: Api, server: dict[str, Any]) -> None:
    for key, console_type in [("os-getVNCConsole", "novnc"), ("os-getSPICEConsole", "spice-html5"),
                              ("os-getSerialConsole", "serial"), ("os-getRDPConsole", "rdp-html5")]:
        assert (await action(api, server["id"], key, console_type, "2.5")).status_code != 404
        for version in ("2.6", "2.100"):
            resp = await action(api, server["id"], key, console_type, version)
            assert resp.status_code == 404, resp.text


async def test_old_rdp_action_is_400(api: Api, server: dict[str, Any]) -> None:
    resp = await action(api, server["id"], "os-getRDPConsole", "rdp-html5")
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == "Unavailable console type rdp-html5."


async def test_old_actions_bad_bodies_are_400(api: Api, server: dict[str, Any]) -> None:
    for key, value in [("os-getVNCConsole", {"type": "spice-html5"}), ("os-getVNCConsole", {}),
                       ("os-getSPICEConsole", {"type": "novnc"}), ("os-getSerialConsole", None),
                       ("os-getSerialConsole", {"type": "serial", "port": 1}),
                       ("os-getSerialConsole", "serial")]:
        resp = await api.request("POST", f"{C}/servers/{server['id']}/action", version="2.1",
                                 json={key: value})
        assert resp.status_code == 400, (key, value, resp.text)


# --- os-console-auth-tokens ------------------------------------------------------


async def _novnc_token(api: Api, server_id: str) -> str:
    resp = await remote_console(api, server_id, "vnc", "novnc")
    assert resp.status_code == 200, resp.text
    return token_in("novnc", resp.json()["remote_console"]["url"])


async def test_token_details_need_2_31(api: Api, server: dict[str, Any]) -> None:
    # Nova shows no console's details below 2.31 since rdp-html5 went (a 400).
    token = await _novnc_token(api, server["id"])
    resp = await show_token(api, token, version="2.30")
    assert resp.status_code == 400, resp.text
    assert "2.31" in resp.json()["badRequest"]["message"]
    assert (await show_token(api, token, version="2.31")).status_code == 200
    assert (await show_token(api, token, version="2.100")).status_code == 200


async def test_token_details_are_for_admins(api: Api, server: dict[str, Any]) -> None:
    token = await _novnc_token(api, server["id"])
    resp = await show_token(api, token, user="demo")
    assert resp.status_code == 403, resp.text
    assert resp.json()["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:os-console-auth-tokens to be performed.")


async def test_unknown_token_is_404(api: Api) -> None:
    resp = await show_token(api, "no-such-token")
    assert resp.status_code == 404, resp.text
    assert resp.json()["itemNotFound"]["message"] == "Token not found"


async def test_expired_token_is_404(api: Api, server: dict[str, Any],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    api.cloud.conf.set("consoleauth", "token_ttl", 30)
    token = await _novnc_token(api, server["id"])
    assert (await show_token(api, token)).status_code == 200
    later = time.time() + 31
    monkeypatch.setattr("novalet.console.tokens.time", SimpleNamespace(time=lambda: later))
    assert (await show_token(api, token)).status_code == 404


async def test_token_of_a_deleted_server_is_404(api: Api, server: dict[str, Any]) -> None:
    token = await _novnc_token(api, server["id"])
    await delete_server(api, server["id"])
    assert (await show_token(api, token)).status_code == 404


# --- what is stored ------------------------------------------------------------


async def _rows(api: Api) -> list[ConsoleAuthToken]:
    async with api.cloud.services.db.transaction() as s:
        return list((await s.execute(select(ConsoleAuthToken))).scalars())


@pytest.mark.parametrize("console_type", ["novnc", "xvpvnc"])
async def test_only_the_tokens_hash_is_stored(api: Api, server: dict[str, Any],
                                              console_type: str) -> None:
    resp = await remote_console(api, server["id"], "vnc", console_type)
    token = token_in(console_type, resp.json()["remote_console"]["url"])
    [row] = await _rows(api)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.console_type == console_type and row.instance_uuid == server["id"]
    for column in ConsoleAuthToken.__table__.columns:
        value = getattr(row, column.key)
        assert not (isinstance(value, str) and token in value), column.key
    if console_type == "xvpvnc":
        assert row.secret  # sealed, for the VNC challenge; never the password itself
    else:
        assert row.secret is None
