"""A server resized while SHUTOFF stays off, as in Nova: VERIFY_RESIZE powered off,
then SHUTOFF after confirm or revert; a running one runs throughout."""

from typing import Any

import pytest

from novalet.compute.states import PowerState
from tests.functional.conftest import Api, boot, wait_for

S = "/compute/v2.1/servers"


async def _action(api: Api, sid: str, body: dict[str, Any]) -> None:
    resp = await api.request("POST", f"{S}/{sid}/action", json=body)
    assert resp.status_code in (202, 204), resp.text


async def _stopped_server(api: Api) -> str:
    sid: str = (await boot(api))["id"]
    await _action(api, sid, {"os-stop": None})
    await wait_for(api, sid, "SHUTOFF")
    return sid


def _guest_power(api: Api, sid: str) -> PowerState:
    state: PowerState = api.cloud.compute.driver.guests[sid]  # type: ignore[attr-defined]
    return state


@pytest.mark.parametrize("finish,flavor", [("confirmResize", "m1.medium"),
                                           ("revertResize", "m1.tiny")])
async def test_a_stopped_server_stays_off_through_resize(api: Api, finish: str,
                                                         flavor: str) -> None:
    sid = await _stopped_server(api)
    await _action(api, sid, {"resize": {"flavorRef": "3"}})
    server = await wait_for(api, sid, "VERIFY_RESIZE")
    assert server["OS-EXT-STS:power_state"] == PowerState.SHUTDOWN
    assert _guest_power(api, sid) == PowerState.SHUTDOWN
    await _action(api, sid, {finish: None})
    server = await wait_for(api, sid, "SHUTOFF")
    assert server["OS-EXT-STS:vm_state"] == "stopped"
    assert server["OS-EXT-STS:power_state"] == PowerState.SHUTDOWN
    assert server["flavor"]["original_name"] == flavor
    assert _guest_power(api, sid) == PowerState.SHUTDOWN
    await _action(api, sid, {"os-start": None})
    await wait_for(api, sid, "ACTIVE")
    assert _guest_power(api, sid) == PowerState.RUNNING


async def test_a_running_server_runs_through_resize_and_revert(api: Api) -> None:
    sid = (await boot(api))["id"]
    await _action(api, sid, {"resize": {"flavorRef": "3"}})
    server = await wait_for(api, sid, "VERIFY_RESIZE")
    assert server["OS-EXT-STS:power_state"] == PowerState.RUNNING
    await _action(api, sid, {"revertResize": None})
    server = await wait_for(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == PowerState.RUNNING
    assert _guest_power(api, sid) == PowerState.RUNNING
