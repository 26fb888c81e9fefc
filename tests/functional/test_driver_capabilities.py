"""Driver capabilities read by the API: a compute host reports what its hypervisor can
do, and an action its host can't do is refused up front (501, as Nova answers a
feature the hypervisor lacks; 400 for an interface attach), before any state changes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from novalet.common.context import RequestContext
from novalet.compute.driver_types import DriverCapabilities
from novalet.db import compute_nodes
from novalet.service.allinone import AllInOne
from novalet.virt.fake import FakeDriver
from tests.functional.conftest import Api, boot, wait_for

S = "/compute/v2.1/servers"


async def _only_501_allowed(response: httpx.Response) -> None:
    """As conftest's hook (any other 5xx is a bug), but 501 is the answer here."""
    if response.status_code >= 500 and response.status_code != 501:
        await response.aread()
        raise AssertionError(f"{response.request.url} answered {response.status_code}: "
                             f"{response.text}")


@pytest.fixture
async def api501(cloud: AllInOne) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test",
                                 event_hooks={"response": [_only_501_allowed]}) as c:
        yield Api(cloud, c)


async def _host_without(cloud: AllInOne, **flags: bool) -> None:
    """Turn capabilities off on the fake host and have it report them again."""
    driver = cloud.compute.driver
    assert isinstance(driver, FakeDriver)
    driver.capabilities = dataclasses.replace(FakeDriver.capabilities, **flags)  # type: ignore[misc]
    await cloud.compute.report_resources(RequestContext.admin())


async def _action(api: Api, sid: str, body: dict[str, Any]) -> httpx.Response:
    return await api.request("POST", f"{S}/{sid}/action", json=body, version="2.100")


async def _action_names(api: Api, sid: str) -> list[str]:
    resp = await api.request("GET", f"{S}/{sid}/os-instance-actions", version="2.100")
    return [a["action"] for a in resp.json()["instanceActions"]]


async def test_the_host_reports_its_drivers_capabilities(cloud: AllInOne) -> None:
    raw = await compute_nodes.capabilities_of(cloud.services.db, "fake-host-1", None)
    assert raw is not None
    assert DriverCapabilities.from_dict(json.loads(raw)) == FakeDriver.capabilities


async def test_pause_on_a_host_without_pause_is_501_and_changes_nothing(api501: Api) -> None:
    api = api501
    sid = (await boot(api))["id"]
    await _host_without(api.cloud, supports_pause=False)
    before = await _action_names(api, sid)
    resp = await _action(api, sid, {"pause": None})
    assert resp.status_code == 501, resp.text
    fault = resp.json()["notImplemented"]
    assert fault["code"] == 501
    assert "not supported" in fault["message"] and "'pause'" in fault["message"]
    server = await wait_for(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    assert await _action_names(api, sid) == before  # no instance action recorded
    # what the host can do still works
    resp = await _action(api, sid, {"suspend": None})
    assert resp.status_code == 202, resp.text
    await wait_for(api, sid, "SUSPENDED")


async def test_finishing_an_action_stays_possible(api501: Api) -> None:
    api = api501
    sid = (await boot(api))["id"]
    assert (await _action(api, sid, {"pause": None})).status_code == 202
    await wait_for(api, sid, "PAUSED")
    await _host_without(api.cloud, supports_pause=False)
    assert (await _action(api, sid, {"unpause": None})).status_code == 202
    await wait_for(api, sid, "ACTIVE")


@pytest.mark.parametrize(("flag", "body"), [
    ("supports_reboot", {"reboot": {"type": "SOFT"}}),
    ("supports_reboot", {"reboot": {"type": "HARD"}}),
    ("supports_suspend", {"suspend": None}),
    ("supports_rescue", {"rescue": None}),
    ("supports_snapshot", {"createImage": {"name": "snap"}}),
    ("supports_resize", {"resize": {"flavorRef": "2"}}),
])
async def test_each_optional_action_is_refused_up_front(api501: Api, flag: str,
                                                        body: dict[str, Any]) -> None:
    api = api501
    sid = (await boot(api))["id"]
    await _host_without(api.cloud, **{flag: False})
    images_before = (await api.request("GET", "/image/v2/images")).json()["images"]
    resp = await _action(api, sid, body)
    assert resp.status_code == 501, resp.text
    server = await wait_for(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    assert (await api.request("GET", "/image/v2/images")).json()["images"] == images_before


async def test_rebuild_on_a_host_without_rebuild_is_501(api501: Api) -> None:
    api = api501
    server = await boot(api)
    await _host_without(api.cloud, supports_rebuild=False)
    resp = await _action(api, server["id"], {"rebuild": {"imageRef": server["image"]["id"]}})
    assert resp.status_code == 501, resp.text


async def test_interface_attach_on_a_host_without_it_is_400(api501: Api) -> None:
    api = api501
    sid = (await boot(api, networks="auto"))["id"]
    await _host_without(api.cloud, supports_attach_interface=False)
    resp = await api.request("GET", "/compute/v2.1/os-networks", user="admin", version="2.35")
    net_id = resp.json()["networks"][0]["id"]
    resp = await api.request("POST", f"{S}/{sid}/os-interface",
                             json={"interfaceAttachment": {"net_id": net_id}})
    assert resp.status_code == 400, resp.text
    assert "Attaching interfaces is not supported" in resp.json()["badRequest"]["message"]
    resp = await api.request("GET", f"{S}/{sid}/os-interface")
    assert len(resp.json()["interfaceAttachments"]) == 1


async def test_a_host_that_reported_nothing_is_not_refused(api501: Api) -> None:
    """A host of an older release reports no capabilities: the API lets it decide."""
    api = api501
    sid = (await boot(api))["id"]
    db = api.cloud.services.db
    (node,) = await compute_nodes.list_nodes(db)
    await compute_nodes.upsert(db, node.uuid, node.host, node.hypervisor_hostname,
                               node.hypervisor_type, node.hypervisor_version, node.host_ip,
                               {}, capabilities={})
    assert (await _action(api, sid, {"pause": None})).status_code == 202
    await wait_for(api, sid, "PAUSED")


async def test_shelve_on_a_host_without_snapshot_is_501_and_makes_no_image(api501: Api
                                                                          ) -> None:
    api = api501
    sid = (await boot(api, name="nosnap"))["id"]
    await _host_without(api.cloud, supports_snapshot=False)
    resp = await _action(api, sid, {"shelve": None})
    assert resp.status_code == 501, resp.text
    server = await wait_for(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    assert "shelve" not in await _action_names(api, sid)
    images = await api.request("GET", "/image/v2/images?name=nosnap-shelved", user="admin")
    assert images.json()["images"] == []
