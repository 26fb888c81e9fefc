"""Bad input gets the right 4xx with a message; never a 500 (the fixture fails on any)."""

from typing import Any

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
    assert "maximum is 2.104" in resp.text
    resp = await api.request("GET", S, version="banana")
    assert resp.status_code == 400


async def test_bad_action_bodies(api: Api) -> None:
    sid = (await boot(api))["id"]
    for body in ({"reboot": None}, {"reboot": {"type": 1}}, {"lock": "yes"},
                 {"os-getConsoleOutput": {"length": "many"}}, {}):
        resp = await api.request("POST", f"{S}/{sid}/action", json=body, version="2.73")
        assert resp.status_code == 400, (body, resp.text)


# --- Reproducers of 500s and validation gaps found by fuzzing (test_fuzz_compute_api) ---


async def test_block_device_mapping_with_a_non_string_uuid_is_400(api: Api) -> None:
    """Was a 500: the image uuid of a block device mapping was used as a string."""
    image_id = await ensure_image(api)
    base = {"name": "a", "flavorRef": "1", "imageRef": image_id, "networks": "none"}
    for bdms in ([{"source_type": "image", "uuid": 5, "boot_index": 0,
                   "destination_type": "local"}],
                 ["not-an-object"], [{"boot_index": "first"}],
                 [{"source_type": "tape"}]):
        resp = await api.request("POST", S, version="2.37", json={"server": {
            **base, "imageRef": "", "block_device_mapping_v2": bdms}})
        assert resp.status_code == 400, (bdms, resp.text)
        assert "block_device_mapping_v2" in resp.json()["badRequest"]["message"]


@pytest.mark.parametrize(("change", "field"), [
    ({"security_groups": [1]}, "security_groups"),
    ({"security_groups": [{"name": "default", "extra": 1}]}, "'extra' was unexpected"),
    ({"networks": [{"uuid": "6a0bd0a5-0000-4000-8000-000000000000", "fixed_ip": "abc"}]},
     "fixed_ip"),
])
async def test_server_create_list_items_are_validated(api: Api, change: dict[str, object],
                                                      field: str) -> None:
    image_id = await ensure_image(api)
    server = {"name": "a", "flavorRef": "1", "imageRef": image_id, "networks": "none",
              **change}
    resp = await api.request("POST", S, version="2.37", json={"server": server})
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["badRequest"]["message"]


async def test_huge_max_count_is_a_quota_error_not_a_hang(api: Api) -> None:
    """Was a hang: a record was built for each of max_count servers before the quota
    check."""
    image_id = await ensure_image(api)
    resp = await api.request("POST", S, version="2.37", json={"server": {
        "name": "a", "flavorRef": "1", "imageRef": image_id, "networks": "none",
        "min_count": "9999999999999999999", "max_count": "9999999999999999999"}})
    assert resp.status_code == 403, resp.text
    assert "Quota exceeded for instances" in resp.json()["forbidden"]["message"]
    # Past 20 digits a count is out of range (int() would refuse 4300 of them: a 500).
    resp = await api.request("POST", S, version="2.37", json={"server": {
        "name": "a", "flavorRef": "1", "imageRef": image_id, "networks": "none",
        "min_count": "9" * 5000}})
    assert resp.status_code == 400, resp.text
    assert "out of range" in resp.json()["badRequest"]["message"]


@pytest.mark.parametrize(("path", "body"), [
    ("/compute/v2.1/os-server-groups",
     {"server_group": {"name": "g", "policy": "anti-affinity",
                       "rules": {"max_server_per_host": "0"}}}),
    ("/compute/v2.1/os-server-groups",
     {"server_group": {"name": "g", "policy": "anti-affinity",
                       "rules": {"max_server_per_host": "9" * 5000}}}),
])
async def test_integers_written_as_strings_keep_their_bounds(
        api: Api, path: str, body: dict[str, Any]) -> None:
    """Was a group no server fits ("0") and a 500 (5000 digits): JSON Schema's
    minimum applies to numbers only, and these strings stand for numbers."""
    resp = await api.request("POST", path, version="2.64", json=body)
    assert resp.status_code == 400, resp.text


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_a_time_outside_utc_range_is_400(api: Api, value: str) -> None:
    """Was a 500: the conversion to UTC overflowed."""
    resp = await api.request("GET", f"{S}/detail", params={"changes-since": value})
    assert resp.status_code == 400, resp.text


@pytest.mark.parametrize("name", ["(", "[a-", "*x"])
async def test_server_name_filter_must_be_a_regex(api: Api, name: str) -> None:
    """Was a 500: the name filter went to the database's REGEXP unchecked."""
    resp = await api.request("GET", S, params={"name": name})
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"].startswith(
        "Invalid input for query parameters name.")


@pytest.mark.parametrize(("method", "path", "version"), [
    ("GET", "/compute/v2.1/os-floating-ips/99999999999999999999999", "2.1"),
    ("DELETE", "/compute/v2.1/os-floating-ips/99999999999999999999999", "2.1"),
    ("GET", "/compute/v2.1/os-security-groups/99999999999999999999999", "2.1"),
    ("PUT", "/compute/v2.1/os-security-groups/99999999999999999999999", "2.1"),
    ("DELETE", "/compute/v2.1/os-security-groups/99999999999999999999999", "2.1"),
    ("DELETE", "/compute/v2.1/os-security-group-rules/99999999999999999999999", "2.1"),
    ("GET", "/compute/v2.1/os-security-groups/-1", "2.1"),
])
async def test_ids_beyond_a_database_integer_are_404(api: Api, method: str, path: str,
                                                     version: str) -> None:
    """Were 500s: SQLite can't bind an integer past 64 bits."""
    body = {"security_group": {"name": "x", "description": "y"}} if method == "PUT" else None
    resp = await api.request(method, path, version=version, user="admin",
                             **({"json": body} if body else {}))
    assert resp.status_code == 404, resp.text
    assert resp.json()["itemNotFound"]["code"] == 404


async def test_rule_with_a_huge_parent_group_id_is_404(api: Api) -> None:
    resp = await api.request("POST", "/compute/v2.1/os-security-group-rules", json={
        "security_group_rule": {"parent_group_id": "99999999999999999999999",
                                "ip_protocol": "tcp", "from_port": 1, "to_port": 2,
                                "cidr": "0.0.0.0/0"}})
    assert resp.status_code == 404, resp.text


async def test_security_group_ids_neither_uuid_nor_number(api: Api) -> None:
    """The compute API's security group ids are uuids (integer ids of before still
    name their group; docs/network-api.md): anything else in a path is a 404, in a
    rule's body Nova with Neutron's 400."""
    for method, path in (("GET", "/compute/v2.1/os-security-groups/-1"),
                         ("DELETE", "/compute/v2.1/os-security-groups/web"),
                         ("DELETE", "/compute/v2.1/os-security-group-rules/1.5")):
        resp = await api.request(method, path)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["itemNotFound"]["code"] == 404
    for parent in ("-1", "web", 1.5, None):
        resp = await api.request("POST", "/compute/v2.1/os-security-group-rules", json={
            "security_group_rule": {"parent_group_id": parent, "ip_protocol": "tcp",
                                    "from_port": 1, "to_port": 2}})
        assert resp.status_code == 400, (parent, resp.text)
        assert resp.json()["badRequest"]["message"] == "Security group id should be uuid"


async def test_huge_offsets_are_400(api: Api) -> None:
    """Was a 500: an OFFSET past a database integer."""
    for path in ("/compute/v2.1/os-server-groups?offset=99999999999999999999999",
                 "/compute/v2.1/os-security-groups?offset=99999999999999999999999"):
        resp = await api.request("GET", path)
        assert resp.status_code == 400, (path, resp.text)
        assert "is greater than the maximum" in resp.json()["badRequest"]["message"]


async def test_declared_query_schemas_are_checked_with_nova_wording(api: Api) -> None:
    resp = await api.request("GET", S, version="2.75", params={"bogus": "1"})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "Invalid input for query parameters bogus. Additional properties are not allowed "
        "('bogus' was unexpected)")
    resp = await api.request("GET", S, version="2.74", params={"bogus": "1"})
    assert resp.status_code == 200
    resp = await api.request("GET", "/compute/v2.1/os-keypairs", version="2.75",
                             params={"bogus": "1"})
    assert resp.status_code == 400
    assert "query parameters bogus" in resp.json()["badRequest"]["message"]


async def test_console_output_length_below_minus_one_is_400(api: Api) -> None:
    sid = (await boot(api))["id"]
    resp = await api.request("POST", f"{S}/{sid}/action",
                             json={"os-getConsoleOutput": {"length": -5}})
    assert resp.status_code == 400, resp.text
    assert "less than the minimum of -1" in resp.json()["badRequest"]["message"]
    resp = await api.request("POST", f"{S}/{sid}/action",
                             json={"os-getConsoleOutput": {"length": -1}})
    assert resp.status_code == 200, resp.text


async def test_user_data_longer_than_65535_characters_is_400(api: Api) -> None:
    """Nova bounds the encoded text; 70000 characters of base64 decode to less than
    65535 bytes and were accepted."""
    image_id = await ensure_image(api)
    resp = await api.request("POST", S, version="2.37", json={"server": {
        "name": "a", "flavorRef": "1", "imageRef": image_id, "networks": "none",
        "user_data": "a" * 70000}})
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    assert "server/user_data" in message and message.endswith("is too long")
    assert len(message) < 400
