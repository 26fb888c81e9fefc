"""One metadata item past the default metadata_items quota (128) is Nova's 403
"over quota", not a 400 from the request schema: on create, rebuild and the
metadata API alike (Tempest's test_max_metadata_exceed_limit)."""

from __future__ import annotations

from tests.functional.conftest import Api, boot, ensure_image

S = "/compute/v2.1/servers"
OVER = {str(i): str(i) for i in range(129)}
MESSAGE = "Maximum number of metadata items exceeds 128"


def _forbidden(resp_json: dict[str, object]) -> object:
    return resp_json.get("forbidden", {}).get("message")  # type: ignore[union-attr]


async def test_129_items_on_create_are_403_over_quota(api: Api) -> None:
    image_id = await ensure_image(api)
    resp = await api.request("POST", S, version="2.100", json={"server": {
        "name": "many", "imageRef": image_id, "flavorRef": "1", "networks": "none",
        "metadata": OVER}})
    assert resp.status_code == 403, resp.text
    assert _forbidden(resp.json()) == MESSAGE
    at_limit = {str(i): str(i) for i in range(128)}
    server = await boot(api, "at-limit", metadata=at_limit)
    assert len(server["metadata"]) == 128


async def test_129_items_on_rebuild_and_metadata_api_are_403(api: Api) -> None:
    server = await boot(api, "meta")
    path = f"{S}/{server['id']}/metadata"
    resp = await api.request("PUT", path, json={"metadata": OVER})
    assert resp.status_code == 403, resp.text
    assert _forbidden(resp.json()) == MESSAGE
    resp = await api.request("POST", f"{S}/{server['id']}/action", json={"rebuild": {
        "imageRef": await ensure_image(api), "metadata": OVER}})
    assert resp.status_code == 403, resp.text
