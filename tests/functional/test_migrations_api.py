"""os-migrations: records a real resize makes (confirmed and reverted), filters,
paging and the microversion boundaries 2.23, 2.59, 2.66 and 2.80."""

from __future__ import annotations

import asyncio
import uuid as uuidlib
from typing import Any

from tests.functional.conftest import Api, boot, wait_for

M = "/compute/v2.1/os-migrations"
S = "/compute/v2.1/servers"


async def _migrations(api: Api, query: str = "", version: str = "2.80") -> list[Any]:
    resp = await api.request("GET", M + query, user="admin", version=version)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["migrations"])


async def _status_becomes(api: Api, sid: str, status: str) -> dict[str, Any]:
    found: list[Any] = []
    for _ in range(250):
        found = await _migrations(api, f"?instance_uuid={sid}")
        if found and found[0]["status"] == status:
            return dict(found[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"migration of {sid} never became {status}: {found}")


async def _resize(api: Api, sid: str, flavor: str) -> None:
    resp = await api.request("POST", f"{S}/{sid}/action", version="2.100",
                             json={"resize": {"flavorRef": flavor}})
    assert resp.status_code == 202, resp.text
    await wait_for(api, sid, "VERIFY_RESIZE")


async def _action(api: Api, sid: str, action: str) -> None:
    resp = await api.request("POST", f"{S}/{sid}/action", version="2.100",
                             json={action: None})
    assert resp.status_code in (202, 204), resp.text


async def _resized_twice(api: Api) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A server resized, confirmed, resized again and reverted."""
    sid = (await boot(api))["id"]
    await _resize(api, sid, "2")
    finished = await _status_becomes(api, sid, "finished")
    await _action(api, sid, "confirmResize")
    await wait_for(api, sid, "ACTIVE")
    confirmed = await _status_becomes(api, sid, "confirmed")
    assert confirmed["id"] == finished["id"]
    await _resize(api, sid, "3")
    await _status_becomes(api, sid, "finished")
    await _action(api, sid, "revertResize")
    await wait_for(api, sid, "ACTIVE")
    reverted = await _status_becomes(api, sid, "reverted")
    return sid, confirmed, reverted


async def test_resize_confirm_and_revert_are_recorded(api: Api) -> None:
    sid, confirmed, reverted = await _resized_twice(api)
    migrations = await _migrations(api)
    assert [m["status"] for m in migrations] == ["reverted", "confirmed"]  # newest first
    m = migrations[1]
    assert m["instance_uuid"] == sid and m["migration_type"] == "resize"
    assert m["source_compute"] == m["dest_compute"] == "fake-host-1"
    assert m["source_node"] == "fake-host-1"
    assert isinstance(m["old_instance_type_id"], int)
    assert m["old_instance_type_id"] != m["new_instance_type_id"]
    assert migrations[0]["old_instance_type_id"] == m["new_instance_type_id"]
    assert m["user_id"] == (await _user_id(api, "demo"))
    server = (await api.request("GET", f"{S}/{sid}", version="2.1")).json()["server"]
    assert m["project_id"] == server["tenant_id"]
    assert str(uuidlib.UUID(m["uuid"])) == m["uuid"]
    assert m["created_at"] and m["updated_at"]


async def _user_id(api: Api, name: str) -> str:
    resp = await api.request("GET", "/identity/v3/users?name=" + name, user="admin")
    return str(resp.json()["users"][0]["id"])


async def test_fields_by_microversion(api: Api) -> None:
    await _resized_twice(api)
    m21 = (await _migrations(api, version="2.1"))[0]
    assert "migration_type" not in m21 and "uuid" not in m21 and "user_id" not in m21
    assert "links" not in m21
    m23 = (await _migrations(api, version="2.23"))[0]
    assert m23["migration_type"] == "resize" and "uuid" not in m23
    m59 = (await _migrations(api, version="2.59"))[0]
    assert "uuid" in m59 and "user_id" not in m59
    m80 = (await _migrations(api, version="2.80"))[0]
    assert "user_id" in m80 and "project_id" in m80


async def test_filters(api: Api) -> None:
    sid, confirmed, reverted = await _resized_twice(api)
    assert [m["id"] for m in await _migrations(api, "?status=confirmed")] == [confirmed["id"]]
    assert await _migrations(api, "?status=error") == []
    assert len(await _migrations(api, "?host=fake-host-1")) == 2
    assert await _migrations(api, "?host=elsewhere") == []
    assert len(await _migrations(api, "?source_compute=fake-host-1")) == 2
    assert len(await _migrations(api, "?migration_type=resize")) == 2
    assert await _migrations(api, "?migration_type=live-migration") == []
    assert await _migrations(api, f"?instance_uuid={uuidlib.uuid4()}") == []
    assert len(await _migrations(api, "?hidden=0")) == 2
    assert await _migrations(api, "?hidden=1") == []
    project = confirmed["project_id"]
    assert len(await _migrations(api, f"?project_id={project}")) == 2
    assert await _migrations(api, "?user_id=nobody") == []


async def test_paging_and_changes_since(api: Api) -> None:
    await _resized_twice(api)
    resp = await api.request("GET", M + "?limit=1", user="admin", version="2.59")
    body = resp.json()
    assert [m["status"] for m in body["migrations"]] == ["reverted"]
    assert "marker=" in body["migrations_links"][0]["href"]
    marker = body["migrations"][0]["uuid"]
    rest = await _migrations(api, f"?marker={marker}", "2.59")
    assert [m["status"] for m in rest] == ["confirmed"]
    resp = await api.request("GET", f"{M}?marker={uuidlib.uuid4()}", user="admin",
                             version="2.59")
    assert resp.status_code == 400
    assert len(await _migrations(api, "?changes-since=2000-01-01T00:00:00Z", "2.59")) == 2
    assert await _migrations(api, "?changes-since=2999-01-01T00:00:00Z", "2.59") == []
    assert await _migrations(api, "?changes-before=2000-01-01T00:00:00Z", "2.66") == []
    for query, version in (("?changes-since=yesterday", "2.59"), ("?limit=x", "2.59"),
                           ("?bogus=1", "2.59"), ("?changes-before=2000-01-01", "2.59"),
                           ("?changes-since=2001-01-01T00:00:00Z&"
                            "changes-before=2000-01-01T00:00:00Z", "2.66"),
                           ("?user_id=x", "2.79")):
        resp = await api.request("GET", M + query, user="admin", version=version)
        assert resp.status_code == 400, (query, version, resp.text)
    # below 2.59 unknown parameters (and paging) are ignored
    assert len(await _migrations(api, "?bogus=1&limit=1", "2.58")) == 2


async def test_server_migrations_list_is_empty(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await api.request("GET", f"{S}/{sid}/migrations", user="admin", version="2.23")
    assert resp.status_code == 200 and resp.json() == {"migrations": []}
    resp = await api.request("GET", f"{S}/{sid}/migrations", user="admin", version="2.22")
    assert resp.status_code == 404
    resp = await api.request("GET", f"{S}/{sid}/migrations/1", user="admin", version="2.23")
    assert resp.status_code == 404
    resp = await api.request("GET", f"{S}/{uuidlib.uuid4()}/migrations", user="admin",
                             version="2.23")
    assert resp.status_code == 404


async def test_members_are_refused(api: Api) -> None:
    assert (await api.request("GET", M, user="demo")).status_code == 403
