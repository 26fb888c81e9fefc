"""os-server-external-events: 200 when every event is accepted, 207 with per-event
codes otherwise, 404 when no server exists; names by microversion; power-update
syncs the power state on the host."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from novalet.db import instances
from tests.functional.conftest import Api, boot, wait_for

E = "/compute/v2.1/os-server-external-events"


async def _post(api: Api, events: list[dict[str, Any]], version: str = "2.1",
                user: str = "admin") -> Any:
    return await api.request("POST", E, user=user, version=version, json={"events": events})


async def test_all_accepted_is_200(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await _post(api, [{"name": "network-changed", "server_uuid": sid},
                             {"name": "network-vif-plugged", "server_uuid": sid,
                              "tag": "port-1", "status": "completed"}])
    assert resp.status_code == 200, resp.text
    events = resp.json()["events"]
    assert events[0] == {"name": "network-changed", "server_uuid": sid,
                         "status": "completed", "code": 200}
    assert events[1]["tag"] == "port-1" and events[1]["code"] == 200


async def test_mixed_is_207_and_none_found_is_404(api: Api) -> None:
    sid = (await boot(api))["id"]
    unknown = str(uuidlib.uuid4())
    resp = await _post(api, [{"name": "network-changed", "server_uuid": sid},
                             {"name": "network-changed", "server_uuid": unknown}])
    assert resp.status_code == 207, resp.text
    codes = {e["server_uuid"]: (e["code"], e["status"]) for e in resp.json()["events"]}
    assert codes == {sid: (200, "completed"), unknown: (404, "failed")}
    resp = await _post(api, [{"name": "network-changed", "server_uuid": unknown}])
    assert resp.status_code == 404


async def test_server_on_no_host_is_422(api: Api) -> None:
    sid = (await boot(api))["id"]
    # As a server the scheduler found no host for is: recorded on none.
    await instances.set_fields(api.cloud.services.db, sid, {"host": None})
    resp = await _post(api, [{"name": "network-changed", "server_uuid": sid}])
    assert resp.status_code == 207
    assert resp.json()["events"][0]["code"] == 422
    assert resp.json()["events"][0]["status"] == "failed"


async def test_names_by_microversion(api: Api) -> None:
    sid = (await boot(api))["id"]
    for name, first in (("volume-extended", "2.51"), ("power-update", "2.76"),
                        ("accelerator-request-bound", "2.82"), ("volume-reimaged", "2.93")):
        before = f"2.{int(first.split('.')[1]) - 1}"
        event = {"name": name, "server_uuid": sid, "tag": "POWER_ON"}
        assert (await _post(api, [event], before)).status_code == 400, name
        assert (await _post(api, [event], first)).status_code == 200, name


async def test_bad_bodies(api: Api) -> None:
    sid = (await boot(api))["id"]
    bodies: list[dict[str, Any]] = [
        {}, {"events": []}, {"events": [{"name": "network-changed"}]},
        {"events": [{"name": "bogus", "server_uuid": sid}]},
        {"events": [{"name": "network-changed", "server_uuid": "not-a-uuid"}]},
        {"events": [{"name": "network-changed", "server_uuid": sid,
                     "status": "odd"}]},
        {"events": [{"name": "network-changed", "server_uuid": sid, "x": 1}]},
        {"events": [{"name": "network-changed", "server_uuid": sid,
                     "tag": "t" * 256}]}]
    for body in bodies:
        resp = await api.request("POST", E, user="admin", json=body)
        assert resp.status_code == 400, (body, resp.text)
    assert (await _post(api, [{"name": "network-changed", "server_uuid": sid}],
                        user="demo")).status_code == 403


async def test_power_update_syncs_power_state(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await _post(api, [{"name": "power-update", "server_uuid": sid,
                              "tag": "POWER_OFF"}], "2.76")
    assert resp.status_code == 200, resp.text
    server = await wait_for(api, sid, "SHUTOFF")
    assert server["OS-EXT-STS:power_state"] == 4
    await _post(api, [{"name": "power-update", "server_uuid": sid, "tag": "POWER_ON"}],
                "2.76")
    await wait_for(api, sid, "ACTIVE")
