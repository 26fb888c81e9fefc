"""Power-state sync and restart recovery, with the fake driver."""

from novalet.compute.states import PowerState
from novalet.db import instances
from tests.functional.conftest import Api, boot, wait_for

S = "/compute/v2.1/servers"


async def test_guest_that_powers_itself_off_becomes_shutoff(api: Api) -> None:
    sid = (await boot(api))["id"]
    api.cloud.compute.driver.guests[sid] = PowerState.SHUTDOWN  # type: ignore[attr-defined]
    await api.cloud.compute.power_sync.sync_once()
    server = await wait_for(api, sid, "SHUTOFF")
    assert server["OS-EXT-STS:power_state"] == 4
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions")
    actions = resp.json()["instanceActions"]
    assert actions[0]["action"] == "stop"
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions/{actions[0]['request_id']}",
                             user="admin")
    (event,) = resp.json()["instanceAction"]["events"]
    assert event["event"] == "compute_sync_power_state" and event["result"] == "Success"


async def test_vanished_guest_is_shutoff_and_paused_power_is_recorded(api: Api) -> None:
    gone, paused = (await boot(api, "gone"))["id"], (await boot(api, "paused"))["id"]
    driver = api.cloud.compute.driver
    del driver.guests[gone]  # type: ignore[attr-defined]
    driver.guests[paused] = PowerState.PAUSED  # type: ignore[attr-defined]
    await api.cloud.compute.power_sync.sync_once()
    assert (await wait_for(api, gone, "SHUTOFF"))["OS-EXT-STS:power_state"] == 0
    server = await wait_for(api, paused, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == 3


async def test_restart_keeps_running_guests_and_settles_the_rest(api: Api) -> None:
    running = (await boot(api, "running"))["id"]
    stuck = (await boot(api, "stuck"))["id"]
    db = api.cloud.services.db
    await instances.set_fields(db, stuck, {"task_state": "powering-off"})
    driver = api.cloud.compute.driver
    driver.guests["0rphan00-0000-4000-8000-000000000000"] = PowerState.RUNNING  # type: ignore[attr-defined]
    await api.cloud.compute.stop()
    await api.cloud.compute.start()  # a restarted compute service, same hypervisor
    assert driver.guests[running] == PowerState.RUNNING  # type: ignore[attr-defined]
    assert "0rphan00-0000-4000-8000-000000000000" not in driver.guests  # type: ignore[attr-defined]
    assert (await wait_for(api, running, "ACTIVE"))["OS-EXT-STS:task_state"] is None
    assert (await wait_for(api, stuck, "ACTIVE"))["OS-EXT-STS:task_state"] is None
