"""Servers through the HTTP API: the whole build flow with the fake driver."""

from typing import Any

from novalet.common.context import RequestContext
from novalet.db import placement
from tests.functional.conftest import Api, boot, ensure_image, wait_for

S = "/compute/v2.1/servers"


async def test_boot_reaches_active_with_nova_shape(api: Api) -> None:
    server = await boot(api, "web-1", metadata={"role": "web"}, tags=["a", "b"],
                        description="first")
    assert server["status"] == "ACTIVE"
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["metadata"] == {"role": "web"}
    assert sorted(server["tags"]) == ["a", "b"]
    assert server["description"] == "first"
    assert server["flavor"]["original_name"] == "m1.tiny"
    assert server["flavor"]["ram"] == 512
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    assert server["OS-SRV-USG:launched_at"]
    assert server["hostId"]
    assert server["pinned_availability_zone"] is None
    assert server["scheduler_hints"] == {}
    assert "OS-EXT-SRV-ATTR:host" not in server  # not for members


async def test_create_response_and_location(api: Api) -> None:
    image_id = await ensure_image(api)
    resp = await api.request("POST", S, version="2.37", json={"server": {
        "name": "x", "imageRef": image_id, "flavorRef": "1", "networks": "auto"}})
    assert resp.status_code == 202
    server = resp.json()["server"]
    assert set(server) >= {"id", "links", "adminPass", "OS-DCF:diskConfig"}
    assert resp.headers["Location"].endswith(f"/servers/{server['id']}")
    assert resp.headers["x-openstack-request-id"].startswith("req-")


async def test_old_microversion_shows_flavor_link(api: Api) -> None:
    server = await boot(api)
    resp = await api.request("GET", f"{S}/{server['id']}", version="2.46")
    body = resp.json()["server"]
    assert body["flavor"]["id"] == "1"
    assert "tags" in body and "original_name" not in body["flavor"]
    resp = await api.request("GET", f"{S}/{server['id']}")
    body = resp.json()["server"]
    assert "locked" not in body and "tags" not in body and "description" not in body
    assert resp.headers["OpenStack-API-Version"] == "compute 2.1"


async def test_admin_sees_extended_attributes(api: Api) -> None:
    server = await boot(api)
    resp = await api.request("GET", f"{S}/{server['id']}", user="admin", version="2.3")
    body = resp.json()["server"]
    assert body["OS-EXT-SRV-ATTR:host"] == "fake-host-1"
    assert body["OS-EXT-SRV-ATTR:reservation_id"].startswith("r-")


async def test_multi_create_and_reservation_id(api: Api) -> None:
    image_id = await ensure_image(api)
    resp = await api.request("POST", S, version="2.37", json={"server": {
        "name": "many", "imageRef": image_id, "flavorRef": "1", "networks": "none",
        "min_count": 3, "max_count": 3, "return_reservation_id": True}})
    assert resp.status_code == 202
    rid = resp.json()["reservation_id"]
    resp = await api.request("GET", f"{S}/detail?reservation_id={rid}", version="2.90")
    servers = resp.json()["servers"]
    assert len(servers) == 3
    assert sorted(s["OS-EXT-SRV-ATTR:hostname"] for s in servers) == [
        "many-1", "many-2", "many-3"]
    for s in servers:
        await wait_for(api, s["id"], "ACTIVE")


async def test_list_filters_and_paging(api: Api) -> None:
    ids = [(await boot(api, f"page-{i}"))["id"] for i in range(5)]
    resp = await api.request("GET", f"{S}?limit=2")
    body = resp.json()
    assert [s["id"] for s in body["servers"]] == ids[::-1][:2]
    assert "marker=" in body["servers_links"][0]["href"]
    resp = await api.request("GET", f"{S}?limit=2&marker={ids[3]}")
    assert [s["id"] for s in resp.json()["servers"]] == [ids[2], ids[1]]
    resp = await api.request("GET", f"{S}?name=page-[34]&sort_key=display_name&sort_dir=asc")
    assert [s["name"] for s in resp.json()["servers"]] == ["page-3", "page-4"]
    resp = await api.request("GET", f"{S}/detail?status=ACTIVE")
    assert len(resp.json()["servers"]) == 5
    resp = await api.request("GET", f"{S}/detail?status=SHUTOFF")
    assert resp.json()["servers"] == []


async def test_list_rejects_bad_filters(api: Api) -> None:
    resp = await api.request("GET", f"{S}?status=BOGUS", version="2.38")
    assert resp.status_code == 400 and "Invalid status value" in resp.text
    resp = await api.request("GET", f"{S}?status=BOGUS", version="2.37")
    assert resp.status_code == 200 and resp.json()["servers"] == []
    resp = await api.request("GET", f"{S}?bogus=1", version="2.75")
    assert resp.status_code == 400
    resp = await api.request("GET", f"{S}?limit=-1")
    assert resp.status_code == 400
    resp = await api.request("GET", f"{S}?marker=nope")
    assert resp.status_code == 400 and "marker [nope] not found" in resp.text
    resp = await api.request("GET", f"{S}?sort_key=password")
    assert resp.status_code == 400


async def test_update_name_and_description(api: Api) -> None:
    server = await boot(api)
    resp = await api.request("PUT", f"{S}/{server['id']}", version="2.94",
                             json={"server": {"name": "renamed", "description": "d",
                                              "hostname": "host.example.com"}})
    assert resp.status_code == 200, resp.text
    body = resp.json()["server"]
    assert (body["name"], body["description"]) == ("renamed", "d")
    assert body["OS-EXT-SRV-ATTR:hostname"] == "host.example.com"
    resp = await api.request("PUT", f"{S}/{server['id']}", json={"server": {"bogus": 1}})
    assert resp.status_code == 400


async def test_delete(api: Api) -> None:
    server = await boot(api)
    resp = await api.request("DELETE", f"{S}/{server['id']}")
    assert resp.status_code == 204
    for _ in range(200):
        resp = await api.request("GET", f"{S}/{server['id']}")
        if resp.status_code == 404:
            break
    assert resp.status_code == 404
    assert resp.json() == {"itemNotFound": {
        "code": 404, "message": f"Instance {server['id']} could not be found."}}


async def _action(api: Api, server_id: str, body: dict[str, Any], user: str = "demo",
                  version: str = "2.100") -> Any:
    return await api.request("POST", f"{S}/{server_id}/action", json=body, user=user,
                             version=version)


async def test_power_actions_walk_the_states(api: Api) -> None:
    sid = (await boot(api))["id"]
    steps = [({"os-stop": None}, "SHUTOFF"), ({"os-start": None}, "ACTIVE"),
             ({"pause": None}, "PAUSED"), ({"unpause": None}, "ACTIVE"),
             ({"suspend": None}, "SUSPENDED"), ({"resume": None}, "ACTIVE"),
             ({"reboot": {"type": "SOFT"}}, "ACTIVE"), ({"reboot": {"type": "HARD"}}, "ACTIVE")]
    for body, status in steps:
        resp = await _action(api, sid, body)
        assert resp.status_code == 202, (body, resp.text)
        server = await wait_for(api, sid, status)
    assert server["OS-EXT-STS:power_state"] == 1
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions", version="2.84")
    actions = [a["action"] for a in resp.json()["instanceActions"]]
    assert actions == ["reboot", "reboot", "resume", "suspend", "unpause", "pause", "start",
                       "stop", "create"]


async def test_wrong_state_is_409_naming_the_state(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"os-start": None})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Cannot 'start' instance {sid} while it is in vm_state active")
    await _action(api, sid, {"os-stop": None})
    await wait_for(api, sid, "SHUTOFF")
    resp = await _action(api, sid, {"pause": None})
    assert resp.status_code == 409


async def test_lock_blocks_member_actions_but_not_admin(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"lock": {"locked_reason": "maintenance"}})
    assert resp.status_code == 202
    server = await wait_for(api, sid, "ACTIVE")
    assert server["locked"] is True and server["locked_reason"] == "maintenance"
    resp = await _action(api, sid, {"os-stop": None})
    assert resp.status_code == 409 and "is locked" in resp.text
    resp = await api.request("DELETE", f"{S}/{sid}")
    assert resp.status_code == 409
    resp = await _action(api, sid, {"unlock": None})
    assert resp.status_code == 202
    resp = await _action(api, sid, {"os-stop": None})
    assert resp.status_code == 202


async def test_unknown_action_and_bad_reboot_type(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"explode": None})
    assert resp.status_code == 400 and "no such action" in resp.text
    resp = await _action(api, sid, {"reboot": {"type": "GENTLE"}})
    assert resp.status_code == 400


async def test_console_output(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"os-getConsoleOutput": {"length": 1}})
    assert resp.status_code == 200
    assert "booted" in resp.json()["output"]


async def test_instance_action_events(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions")
    (create,) = resp.json()["instanceActions"]
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions/{create['request_id']}",
                             user="admin", version="2.62")
    action = resp.json()["instanceAction"]
    events = {e["event"]: e for e in action["events"]}
    assert events["compute_build_and_run_instance"]["result"] == "Success"
    assert events["compute_build_and_run_instance"]["host"] == "fake-host-1"
    assert events["conductor_schedule_and_build_instances"]["result"] == "Success"
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions/req-nope")
    assert resp.status_code == 404


async def test_metadata_api(api: Api) -> None:
    sid = (await boot(api, metadata={"a": "1"}))["id"]
    base = f"{S}/{sid}/metadata"
    resp = await api.request("POST", base, json={"metadata": {"b": "2"}})
    assert resp.json() == {"metadata": {"a": "1", "b": "2"}}
    resp = await api.request("PUT", base, json={"metadata": {"c": "3"}})
    assert resp.json() == {"metadata": {"c": "3"}}
    resp = await api.request("PUT", f"{base}/d", json={"meta": {"d": "4"}})
    assert resp.json() == {"meta": {"d": "4"}}
    resp = await api.request("GET", f"{base}/d")
    assert resp.json() == {"meta": {"d": "4"}}
    resp = await api.request("PUT", f"{base}/e", json={"meta": {"d": "4"}})
    assert resp.status_code == 400
    resp = await api.request("DELETE", f"{base}/c")
    assert resp.status_code == 204
    resp = await api.request("DELETE", f"{base}/c")
    assert resp.status_code == 404
    resp = await api.request("GET", base)
    assert resp.json() == {"metadata": {"d": "4"}}


async def test_tags_api(api: Api) -> None:
    sid = (await boot(api))["id"]
    base = f"{S}/{sid}/tags"
    resp = await api.request("PUT", f"{base}/red", version="2.26")
    assert resp.status_code == 201
    resp = await api.request("PUT", f"{base}/red", version="2.26")
    assert resp.status_code == 204
    resp = await api.request("GET", base, version="2.26")
    assert resp.json() == {"tags": ["red"]}
    resp = await api.request("GET", base, version="2.25")
    assert resp.status_code == 404
    resp = await api.request("PUT", base, version="2.26", json={"tags": ["x", "y"]})
    assert sorted(resp.json()["tags"]) == ["x", "y"]
    resp = await api.request("GET", f"{S}?tags=x,y", version="2.26")
    assert [s["id"] for s in resp.json()["servers"]] == [sid]
    resp = await api.request("GET", f"{S}?not-tags-any=x", version="2.26")
    assert resp.json()["servers"] == []
    resp = await api.request("DELETE", f"{base}/nope", version="2.26")
    assert resp.status_code == 404
    resp = await api.request("DELETE", base, version="2.26")
    assert resp.status_code == 204


async def test_no_valid_host_says_which_filter_removed_what(api: Api) -> None:
    api.cloud.conf.set("fake", "memory_mb", 1024)
    await api.cloud.compute.report_resources(RequestContext.admin())
    server = await boot(api, "too-big", flavorRef="4", wait="ERROR")
    fault = server["fault"]
    assert fault["code"] == 500
    assert "No valid host was found" in fault["message"]
    assert "ResourcesFilter removed 1 host(s): fake-host-1" in fault["message"]
    assert "MB RAM free, 8192 needed" in fault["message"]
    resp = await _action(api, server["id"], {"reboot": {"type": "HARD"}})
    assert resp.status_code == 409 and "in host None" in resp.text
    resp = await api.request("DELETE", f"{S}/{server['id']}")
    assert resp.status_code == 204


async def test_unknown_zone_is_400(api: Api) -> None:
    image_id = await ensure_image(api)
    resp = await api.request("POST", S, version="2.37", json={"server": {
        "name": "x", "imageRef": image_id, "flavorRef": "1", "networks": "none",
        "availability_zone": "mars"}})
    assert resp.status_code == 400
    assert "availability zone is not available" in resp.text


async def test_forced_host_is_admin_only(api: Api) -> None:
    image_id = await ensure_image(api)
    body = {"server": {"name": "x", "imageRef": image_id, "flavorRef": "1",
                       "networks": "none", "availability_zone": "nova:fake-host-1"}}
    resp = await api.request("POST", S, version="2.37", json=body)
    assert resp.status_code == 403
    resp = await api.request("POST", S, version="2.37", json=body, user="admin")
    assert resp.status_code == 202
    await wait_for(api, resp.json()["server"]["id"], "ACTIVE", user="admin")


async def test_spawn_failure_is_error_with_fault_and_frees_resources(api: Api) -> None:
    server = await boot(api, "doomed", metadata={"fake_spawn_error": "disk on fire"},
                        wait="ERROR")
    assert server["fault"]["message"] == "Hypervisor error: disk on fire"
    assert server["OS-EXT-STS:task_state"] is None
    assert await placement.allocations_of(api.cloud.services.db, server["id"]) == {}
    resp = await api.request("GET", f"{S}/{server['id']}/os-instance-actions")
    (create,) = resp.json()["instanceActions"]
    assert create["message"] == "Error"
    resp = await api.request("DELETE", f"{S}/{server['id']}")
    assert resp.status_code == 204


async def test_console_output_length_is_that_many_lines(api: Api) -> None:
    """Tempest's test_get_console_output splits a length=3 tail on newlines and
    expects three pieces: the fake guest's log ends without one."""
    sid = (await boot(api))["id"]
    resp = await _action(api, sid, {"os-getConsoleOutput": {"length": 3}})
    assert len(resp.json()["output"].split("\n")) == 3
    resp = await _action(api, sid, {"os-getConsoleOutput": {}})
    assert len(resp.json()["output"].split("\n")) > 3
