"""Bad input gets the right 4xx with a message; never a 500 (the fixture fails on any)."""

import pytest

from tests.functional.conftest import Api, boot, ensure_image

S = "/compute/v2.1/servers"


async def test_malformed_json_is_400(api: Api) -> None:
    resp = await api.request("POST", S, content=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"].startswith("Malformed request body")
    resp = await api.request("POST", S, content=b"",
                             headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    resp = await api.request("POST", S, json=["a", "list"])
    assert resp.status_code == 400


@pytest.mark.parametrize(("server", "fragment"), [
    ({"name": 5, "flavorRef": "1", "imageRef": "x", "networks": "none"}, "name"),
    ({"name": "", "flavorRef": "1", "imageRef": "x", "networks": "none"}, "name"),
    ({"name": " lead", "flavorRef": "1", "imageRef": "x", "networks": "none"}, "name"),
    ({"flavorRef": "1", "imageRef": "x", "networks": "none"}, "'name' is a required"),
    ({"name": "a", "imageRef": "x", "networks": "none"}, "'flavorRef' is a required"),
    ({"name": "a", "flavorRef": "1", "imageRef": "x"}, "'networks' is a required"),
    ({"name": "a", "flavorRef": "1", "imageRef": "x", "networks": "some"}, "networks"),
    ({"name": "a", "flavorRef": "1", "imageRef": "x", "networks": "none",
      "min_count": 0}, "min_count"),
    ({"name": "a", "flavorRef": "1", "imageRef": "x", "networks": "none",
      "metadata": {"k": 1}}, "metadata"),
    ({"name": "a", "flavorRef": "1", "imageRef": "x", "networks": "none",
      "bogus": True}, "'bogus' was unexpected"),
    ({"name": "a", "flavorRef": "1", "imageRef": "x", "networks": "none",
      "personality": []}, "'personality' was unexpected"),
])
async def test_schema_errors_name_the_field(api: Api, server: dict[str, object],
                                            fragment: str) -> None:
    resp = await api.request("POST", S, version="2.57", json={"server": server})
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["badRequest"]["message"]


async def test_unknown_flavor_image_and_key_are_400(api: Api) -> None:
    image_id = await ensure_image(api)
    base = {"name": "a", "flavorRef": "1", "imageRef": image_id, "networks": "none"}
    cases = [({"flavorRef": "999"}, "Flavor 999 could not be found."),
             ({"imageRef": "6a0bd0a5-0000-4000-8000-000000000000"},
              "Image 6a0bd0a5-0000-4000-8000-000000000000 could not be found."),
             ({"key_name": "nokey"}, "Invalid key_name provided."),
             ({"user_data": "%%%not base64"}, "User data needs to be valid base 64."),
             ({"min_count": 3, "max_count": 2}, "min_count must be <= max_count")]
    for change, message in cases:
        resp = await api.request("POST", S, version="2.37", json={"server": {**base, **change}})
        assert resp.status_code == 400, (change, resp.text)
        assert resp.json()["badRequest"]["message"] == message


async def test_missing_and_bad_tokens_are_401(api: Api) -> None:
    resp = await api.client.get(S)
    assert resp.status_code == 401
    assert resp.json()["unauthorized"]["code"] == 401
    resp = await api.client.get(S, headers={"X-Auth-Token": "garbage"})
    assert resp.status_code == 401
    resp = await api.client.get("/image/v2/images", headers={"X-Auth-Token": "garbage"})
    assert resp.status_code == 401


async def test_unknown_paths_and_methods(api: Api) -> None:
    resp = await api.request("GET", "/compute/v2.1/no-such-thing")
    assert resp.status_code == 404 and resp.json()["itemNotFound"]["code"] == 404
    resp = await api.request("PATCH", S)
    assert resp.status_code == 405
    resp = await api.request("GET", f"{S}/not-a-uuid")
    assert resp.status_code == 404


async def test_microversion_out_of_range_is_406(api: Api) -> None:
    resp = await api.request("GET", S, version="2.999")
    assert resp.status_code == 406
    assert "maximum is 2.100" in resp.text
    resp = await api.request("GET", S, version="banana")
    assert resp.status_code == 400


async def test_bad_action_bodies(api: Api) -> None:
    sid = (await boot(api))["id"]
    for body in ({"reboot": None}, {"reboot": {"type": 1}}, {"lock": "yes"},
                 {"os-getConsoleOutput": {"length": "many"}}, {}):
        resp = await api.request("POST", f"{S}/{sid}/action", json=body, version="2.73")
        assert resp.status_code == 400, (body, resp.text)
