"""One request can be followed across services by its request id."""

import logging

import pytest

from novalet.common.context import RequestIdFilter
from tests.functional.conftest import Api, ensure_image, wait_for


async def test_request_id_reaches_conductor_scheduler_and_compute_logs(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.DEBUG)
    image_id = await ensure_image(api)
    resp = await api.request("POST", "/compute/v2.1/servers", version="2.37", json={
        "server": {"name": "traced", "imageRef": image_id, "flavorRef": "1",
                   "networks": "none"}})
    request_id = resp.headers["x-openstack-request-id"]
    await wait_for(api, resp.json()["server"]["id"], "ACTIVE")
    traced = {r.name for r in caplog.records if getattr(r, "request_id", None) == request_id}
    assert "novalet.scheduler.manager" in traced
    assert "novalet.compute.manager" in traced


async def test_a_valid_incoming_request_id_is_kept(api: Api) -> None:
    rid = "req-0f0f0f0f-1111-4222-8333-444444444444"
    resp = await api.request("GET", "/compute/v2.1/servers",
                             headers={"X-OpenStack-Request-ID": rid})
    assert resp.headers["x-openstack-request-id"] == rid
    resp = await api.request("GET", "/compute/v2.1/servers",
                             headers={"X-OpenStack-Request-ID": "evil\nvalue"})
    assert resp.headers["x-openstack-request-id"] != "evil\nvalue"
