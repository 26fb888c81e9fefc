"""Quotas through the HTTP API: enforcement of each quota type, race-free counting,
os-quota-sets, os-quota-class-sets and limits."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from novalet.db import instances
from tests.functional.conftest import Api, boot, ensure_image, wait_for

S = "/compute/v2.1/servers"
QS = "/compute/v2.1/os-quota-sets"
QC = "/compute/v2.1/os-quota-class-sets"
KP = "/compute/v2.1/os-keypairs"


async def _project(api: Api, name: str = "demo") -> str:
    (project,) = await api.cloud.services.identity.list_projects(name=name)
    return str(project.id)


async def _set_quota(api: Api, project: str, version: str = "2.1", query: str = "",
                     **values: Any) -> dict[str, Any]:
    resp = await api.request("PUT", f"{QS}/{project}{query}", user="admin", version=version,
                             json={"quota_set": values})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()["quota_set"]
    return body


async def _create(api: Api, version: str = "2.37", user: str = "demo",
                  **server: Any) -> Any:
    image_id = await ensure_image(api)
    body = {"server": {"name": "q", "imageRef": image_id, "flavorRef": "1",
                       "networks": "none", **server}}
    return await api.request("POST", S, user=user, version=version, json=body)


def _forbidden(resp: Any) -> str:
    assert resp.status_code == 403, resp.text
    message: str = resp.json()["forbidden"]["message"]
    return message


# --- race-free counting -----------------------------------------------------

async def test_fifty_concurrent_creates_against_a_quota_of_ten(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, instances=10, cores=-1, ram=-1)
    await ensure_image(api)
    await api.token("demo")
    responses = await asyncio.gather(*[_create(api, version="2.37", networks="none")
                                       for _ in range(50)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 10 + [403] * 40, codes
    for resp in responses:
        if resp.status_code == 403:
            assert resp.json()["forbidden"]["message"].startswith(
                "Quota exceeded for instances: Requested 1, but already used ")
            assert resp.json()["forbidden"]["message"].endswith(" of 10 instances")
    live = await instances.list_instances(api.cloud.services.db,
                                          instances.ListQuery(project_id=project))
    assert len(live) == 10


async def test_concurrent_key_pair_imports_stay_within_the_quota(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, key_pairs=3)
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    await api.token("demo")
    responses = await asyncio.gather(*[
        api.request("POST", KP, version="2.2",
                    json={"keypair": {"name": f"k{i}", "public_key": public}})
        for i in range(12)])
    assert sorted(r.status_code for r in responses) == [201] * 3 + [403] * 9
    listed = (await api.request("GET", KP)).json()["keypairs"]
    assert len(listed) == 3


# --- one test per quota type -------------------------------------------------

async def test_instances_quota_message(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, instances=1)
    await boot(api, wait=None)
    message = _forbidden(await _create(api))
    assert message == "Quota exceeded for instances: Requested 1, but already used 1 of 1 " \
        "instances"


async def test_max_count_over_quota_creates_what_fits(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, instances=3)
    resp = await _create(api, min_count=1, max_count=5, return_reservation_id=True)
    assert resp.status_code == 202, resp.text
    live = await instances.list_instances(api.cloud.services.db,
                                          instances.ListQuery(project_id=project))
    assert len(live) == 3
    message = _forbidden(await _create(api, min_count=2, max_count=4))
    assert message == "Quota exceeded for instances: Requested 2, but already used 3 of 3 " \
        "instances"


async def test_min_count_over_quota_is_refused(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, instances=2)
    message = _forbidden(await _create(api, min_count=3, max_count=3))
    assert message == "Quota exceeded for instances: Requested 3, but already used 0 of 2 " \
        "instances"


async def test_cores_and_ram_quotas(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, cores=1)
    await boot(api, wait=None)  # flavor 1: 1 vcpu, 512 MB
    assert _forbidden(await _create(api)) == (
        "Quota exceeded for cores: Requested 1, but already used 1 of 1 cores")
    await _set_quota(api, project, cores=-1, ram=600)
    assert _forbidden(await _create(api)) == (
        "Quota exceeded for ram: Requested 512, but already used 512 of 600 ram")


async def test_per_user_quota(api: Api) -> None:
    project = await _project(api)
    (demo,) = await api.cloud.services.identity.list_users(name="demo")
    await _set_quota(api, project, query=f"?user_id={demo.id}", instances=1)
    shown = (await api.request("GET", f"{QS}/{project}?user_id={demo.id}")).json()
    assert shown["quota_set"]["instances"] == 1
    assert (await api.request("GET", f"{QS}/{project}")).json()["quota_set"]["instances"] \
        == 10
    await boot(api, wait=None)
    assert _forbidden(await _create(api)) == (
        "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances")
    # a user's limit may not exceed the project's
    resp = await api.request("PUT", f"{QS}/{project}?user_id={demo.id}", user="admin",
                             json={"quota_set": {"instances": 11}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "Quota limit 11 for instances must be less than or equal to 10.")
    resp = await api.request("DELETE", f"{QS}/{project}?user_id={demo.id}", user="admin")
    assert resp.status_code == 202
    assert (await _create(api)).status_code == 202


async def test_metadata_items_quota_on_create_rebuild_and_metadata_updates(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, metadata_items=2)
    assert _forbidden(await _create(api, metadata={"a": "1", "b": "2", "c": "3"})) == (
        "Maximum number of metadata items exceeds 2")
    server = await boot(api, metadata={"a": "1"})
    path = f"{S}/{server['id']}/metadata"
    assert (await api.request("POST", path, json={"metadata": {"b": "2"}})).status_code == 200
    assert _forbidden(await api.request("POST", path, json={"metadata": {"c": "3"}})) == (
        "Maximum number of metadata items exceeds 2")
    assert _forbidden(await api.request("PUT", f"{path}/c", json={"meta": {"c": "3"}})) == (
        "Maximum number of metadata items exceeds 2")
    assert _forbidden(await api.request("PUT", path, json={"metadata": {
        "x": "1", "y": "2", "z": "3"}})) == "Maximum number of metadata items exceeds 2"
    resp = await api.request("PUT", path, json={"metadata": {"x": "1", "y": "2"}})
    assert resp.status_code == 200
    image_id = await ensure_image(api)
    resp = await api.request("POST", f"{S}/{server['id']}/action", json={"rebuild": {
        "imageRef": image_id, "metadata": {"a": "1", "b": "2", "c": "3"}}})
    assert _forbidden(resp) == "Maximum number of metadata items exceeds 2"


async def test_129_metadata_items_are_over_the_default_quota_not_a_bad_request(
        api: Api) -> None:
    """Nova's schemas do not count metadata items: 129 against the default quota
    of 128 is a 403 on every path, and 128 fit."""
    too_many = {f"k{i}": "v" for i in range(129)}
    exceeds = "Maximum number of metadata items exceeds 128"
    assert _forbidden(await _create(api, metadata=too_many)) == exceeds
    server = await boot(api, metadata={f"k{i}": "v" for i in range(128)})
    path = f"{S}/{server['id']}/metadata"
    for method in ("POST", "PUT"):
        resp = await api.request(method, path, json={"metadata": too_many})
        assert _forbidden(resp) == exceeds
    assert _forbidden(await api.request("PUT", f"{path}/extra", json={
        "meta": {"extra": "v"}})) == exceeds
    resp = await api.request("POST", f"{S}/{server['id']}/action", json={"rebuild": {
        "imageRef": await ensure_image(api), "metadata": too_many}})
    assert _forbidden(resp) == exceeds
    resp = await api.request("POST", f"{S}/{server['id']}/action", json={"createImage": {
        "name": "snap", "metadata": too_many}})
    assert _forbidden(resp) == "Image metadata limit exceeded"
    resp = await api.request("GET", f"{S}/{server['id']}", version="2.100")
    assert resp.json()["server"]["OS-EXT-STS:task_state"] is None  # nothing started


async def test_concurrent_metadata_updates_stay_within_the_quota(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, metadata_items=2)
    server = await boot(api, metadata={"a": "1"})
    path = f"{S}/{server['id']}/metadata"
    responses = await asyncio.gather(*[
        api.request("POST", path, json={"metadata": {key: "x"}}) for key in "bcde"])
    assert sorted(r.status_code for r in responses) == [200, 403, 403, 403]
    shown = (await api.request("GET", path)).json()["metadata"]
    assert len(shown) == 2


def _file(path: str, size: int) -> dict[str, str]:
    return {"path": path, "contents": base64.b64encode(b"x" * size).decode()}


async def test_injected_file_quotas(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, injected_files=1, injected_file_content_bytes=10,
                     injected_file_path_bytes=8)
    assert _forbidden(await _create(api, personality=[_file("/a", 1), _file("/b", 1)])) == (
        "Personality file limit exceeded")
    assert _forbidden(await _create(api, personality=[_file("/a", 11)])) == (
        "Personality file content exceeds maximum 10")
    assert _forbidden(await _create(api, personality=[_file("/abcdefgh", 1)])) == (
        "Personality file path exceeds maximum 8")
    server = await boot(api, version="2.37", personality=[_file("/a", 10)])
    image_id = await ensure_image(api)
    resp = await api.request("POST", f"{S}/{server['id']}/action", json={"rebuild": {
        "imageRef": image_id, "personality": [_file("/a", 1), _file("/b", 1)]}})
    assert _forbidden(resp) == "Personality file limit exceeded"


async def test_key_pairs_quota(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, key_pairs=1)
    resp = await api.request("POST", KP, version="2.2", json={"keypair": {"name": "a"}})
    assert resp.status_code == 201, resp.text
    resp = await api.request("POST", KP, version="2.2", json={"keypair": {
        "name": "b", "public_key": resp.json()["keypair"]["public_key"]}})
    assert _forbidden(resp) == "Quota exceeded, too many key pairs."
    resp = await api.request("POST", KP, version="2.2", json={"keypair": {"name": "c"}})
    assert _forbidden(resp) == "Quota exceeded, too many key pairs."
    detail = (await api.request("GET", f"{QS}/{project}/detail")).json()["quota_set"]
    assert detail["key_pairs"] == {"limit": 1, "in_use": 0, "reserved": 0}


async def test_a_resize_counts_the_larger_flavor_until_confirmed(api: Api) -> None:
    project = await _project(api)
    resp = await api.request("POST", "/compute/v2.1/flavors", user="admin", json={
        "flavor": {"name": "less-ram", "ram": 256, "vcpus": 1, "disk": 1, "id": "less"}})
    assert resp.status_code == 200, resp.text

    async def ram_in_use() -> int:
        detail = (await api.request("GET", f"{QS}/{project}/detail")).json()["quota_set"]
        return int(detail["ram"]["in_use"])

    server = await boot(api)  # m1.tiny: 512 MB
    for action, status, ram in (({"resize": {"flavorRef": "2"}}, "VERIFY_RESIZE", 2048),
                                ({"revertResize": None}, "ACTIVE", 512),
                                ({"resize": {"flavorRef": "less"}}, "VERIFY_RESIZE", 512),
                                ({"confirmResize": None}, "ACTIVE", 256)):
        resp = await api.request("POST", f"{S}/{server['id']}/action", json=action)
        assert resp.status_code in (202, 204), resp.text
        await wait_for(api, server["id"], status)
        assert await ram_in_use() == ram, action


async def test_concurrent_resizes_stay_within_the_quota(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, ram=512 * 2 + 1536)
    servers = [await boot(api, "a"), await boot(api, "b")]
    responses = await asyncio.gather(*[
        api.request("POST", f"{S}/{server['id']}/action",
                    json={"resize": {"flavorRef": "2"}}) for server in servers])
    assert sorted(r.status_code for r in responses) == [202, 403]


async def test_resize_over_quota_is_refused(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, ram=1024)
    server = await boot(api)
    resp = await api.request("POST", f"{S}/{server['id']}/action",
                             json={"resize": {"flavorRef": "2"}})  # 2048 MB
    assert _forbidden(resp) == (
        "Quota exceeded for ram: Requested 1536, but already used 512 of 1024 ram")


# --- os-quota-sets -----------------------------------------------------------

_COMMON = {"instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128,
           "key_pairs": 100, "server_groups": 10, "server_group_members": 10}
_PERSONALITY = {"injected_files": 5, "injected_file_content_bytes": 10240,
                "injected_file_path_bytes": 255}
_NETWORK = {"floating_ips": 10, "fixed_ips": -1, "security_groups": 10,
            "security_group_rules": 20}


async def test_quota_set_show_and_defaults_at_each_boundary(api: Api) -> None:
    project = await _project(api)
    for version, expected in (("2.1", {**_COMMON, **_PERSONALITY, **_NETWORK}),
                              ("2.35", {**_COMMON, **_PERSONALITY, **_NETWORK}),
                              ("2.36", {**_COMMON, **_PERSONALITY}),
                              ("2.56", {**_COMMON, **_PERSONALITY}),
                              ("2.57", _COMMON)):
        for path in (f"{QS}/{project}", f"{QS}/{project}/defaults"):
            resp = await api.request("GET", path, version=version)
            assert resp.status_code == 200, resp.text
            assert resp.json() == {"quota_set": {"id": project, **expected}}, version


async def test_quota_set_detail_shows_usage(api: Api) -> None:
    project = await _project(api)
    await boot(api, flavorRef="2")
    detail = (await api.request("GET", f"{QS}/{project}/detail", version="2.57")).json()
    quota_set = detail["quota_set"]
    assert quota_set["id"] == project
    assert quota_set["instances"] == {"limit": 10, "in_use": 1, "reserved": 0}
    assert quota_set["cores"] == {"limit": 20, "in_use": 1, "reserved": 0}
    assert quota_set["ram"] == {"limit": 51200, "in_use": 2048, "reserved": 0}
    assert set(quota_set) == {"id", *_COMMON}


async def test_quota_set_update_and_delete(api: Api) -> None:
    project = await _project(api)
    body = await _set_quota(api, project, version="2.57", instances="5", cores=-1)
    assert body == {**_COMMON, "instances": 5, "cores": -1}
    shown = (await api.request("GET", f"{QS}/{project}", version="2.57")).json()
    assert shown["quota_set"]["instances"] == 5
    resp = await api.request("DELETE", f"{QS}/{project}", user="admin")
    assert resp.status_code == 202
    shown = (await api.request("GET", f"{QS}/{project}", version="2.57")).json()
    assert shown["quota_set"] == {"id": project, **_COMMON}


async def test_limit_below_usage_needs_force(api: Api) -> None:
    project = await _project(api)
    await boot(api, wait=None)
    await boot(api, "b", wait=None)
    resp = await api.request("PUT", f"{QS}/{project}", user="admin",
                             json={"quota_set": {"instances": 1}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "Quota limit 1 for instances must be greater than or equal to already used and "
        "reserved 2.")
    body = await _set_quota(api, project, instances=1, force=True)
    assert body["instances"] == 1


async def test_quota_set_bad_input(api: Api) -> None:
    project = await _project(api)
    for bad in ({"instances": -2}, {"instances": "ten"}, {"instances": 1.5},
                {"bogus": 1}, {"instances": 2**31}, {"force": "maybe"},
                {"instances": "-2"}, {"instances": "99999999999999999999"},
                {"instances": None}, {"instances": True}):
        resp = await api.request("PUT", f"{QS}/{project}", user="admin",
                                 json={"quota_set": bad})
        assert resp.status_code == 400, (bad, resp.text)
    bodies: list[dict[str, Any]] = [{}, {"quota_set": []}, {"quota": {"instances": 1}}]
    for body in bodies:
        resp = await api.request("PUT", f"{QS}/{project}", user="admin", json=body)
        assert resp.status_code == 400, (body, resp.text)
    # fields gone at a microversion are unknown keys there
    for version, gone in (("2.36", "floating_ips"), ("2.36", "security_groups"),
                          ("2.57", "injected_files"), ("2.57", "injected_file_path_bytes")):
        resp = await api.request("PUT", f"{QS}/{project}", user="admin", version=version,
                                 json={"quota_set": {gone: 1}})
        assert resp.status_code == 400, (version, gone)
        resp = await api.request("PUT", f"{QS}/{project}", user="admin", version="2.35",
                                 json={"quota_set": {"floating_ips": 1}})
        assert resp.status_code == 200
    resp = await api.request("GET", f"{QS}/{project}?x=1", version="2.75")
    assert resp.status_code == 200  # Nova ignores unknown query parameters here
    resp = await api.request("PUT", f"{QS}/{project}?user_id={'u' * 256}", user="admin",
                             json={"quota_set": {"instances": 1}})
    assert resp.status_code == 400
    resp = await api.request("PUT", f"{QS}/no-such-project", user="admin",
                             json={"quota_set": {"instances": 1}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "Project ID no-such-project is not a valid project.")
    resp = await api.request("GET", f"{QS}/no-such-project", user="admin")
    assert resp.status_code == 400


async def test_quota_set_policy(api: Api) -> None:
    demo, admin = await _project(api), await _project(api, "admin")
    assert (await api.request("GET", f"{QS}/{demo}")).status_code == 200
    assert (await api.request("GET", f"{QS}/{demo}/detail")).status_code == 200
    assert (await api.request("GET", f"{QS}/{admin}")).status_code == 403
    assert (await api.request("GET", f"{QS}/{admin}/detail")).status_code == 403
    assert (await api.request("GET", f"{QS}/{admin}/defaults")).status_code == 200
    resp = await api.request("PUT", f"{QS}/{demo}", json={"quota_set": {"instances": 1}})
    assert resp.status_code == 403
    assert (await api.request("DELETE", f"{QS}/{demo}")).status_code == 403
    assert (await api.request("GET", f"{QS}/{demo}", user="admin")).status_code == 200


# --- os-quota-class-sets ----------------------------------------------------

async def test_quota_class_set_at_each_boundary(api: Api) -> None:
    below_250 = {"instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128,
                 "key_pairs": 100, **_PERSONALITY, **_NETWORK}
    from_250 = {**_COMMON, **_PERSONALITY}
    for version, expected in (("2.1", below_250), ("2.49", below_250), ("2.50", from_250),
                              ("2.56", from_250), ("2.57", _COMMON)):
        resp = await api.request("GET", f"{QC}/default", user="admin", version=version)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"quota_class_set": {"id": "default", **expected}}, version


async def test_quota_class_default_applies_to_projects(api: Api) -> None:
    project = await _project(api)
    resp = await api.request("PUT", f"{QC}/default", user="admin", version="2.57",
                             json={"quota_class_set": {"instances": 1, "server_groups": 3}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"quota_class_set": {**_COMMON, "instances": 1,
                                               "server_groups": 3}}
    shown = (await api.request("GET", f"{QS}/{project}", version="2.57")).json()
    assert shown["quota_set"]["instances"] == 1
    defaults = (await api.request("GET", f"{QS}/{project}/defaults", version="2.57")).json()
    assert defaults["quota_set"]["instances"] == 1
    await boot(api, wait=None)
    assert _forbidden(await _create(api)).endswith("already used 1 of 1 instances")
    # a project's own limit wins over the class
    await _set_quota(api, project, instances=2)
    assert (await _create(api)).status_code == 202


async def test_quota_class_set_policy_and_bad_input(api: Api) -> None:
    assert (await api.request("GET", f"{QC}/default")).status_code == 403
    resp = await api.request("PUT", f"{QC}/default", json={"quota_class_set": {"cores": 1}})
    assert resp.status_code == 403
    for version, bad in (("2.1", {"cores": -2}), ("2.1", {"server_groups": 1}),
                         ("2.50", {"floating_ips": 1}), ("2.57", {"injected_files": 1}),
                         ("2.1", {"cores": "x"}), ("2.1", {"force": True}),
                         ("2.1", {"cores": "2147483648"}), ("2.1", {"cores": "-5"})):
        resp = await api.request("PUT", f"{QC}/default", user="admin", version=version,
                                 json={"quota_class_set": bad})
        assert resp.status_code == 400, (version, bad, resp.text)


# --- limits ------------------------------------------------------------------

async def test_limits_show_the_projects_quotas(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, instances=4, cores=8, ram=4096, key_pairs=3,
                     metadata_items=7)
    await boot(api)
    absolute = (await api.request("GET", "/compute/v2.1/limits", version="2.57")).json()[
        "limits"]["absolute"]
    assert absolute["maxTotalInstances"] == 4
    assert absolute["maxTotalCores"] == 8
    assert absolute["maxTotalRAMSize"] == 4096
    assert absolute["maxTotalKeypairs"] == 3
    assert absolute["maxServerMeta"] == 7
    assert absolute["totalInstancesUsed"] == 1
    admin_view = (await api.request("GET", f"/compute/v2.1/limits?tenant_id={project}",
                                    user="admin")).json()["limits"]["absolute"]
    assert admin_view["maxTotalInstances"] == 4


async def test_server_groups_count_in_limits_and_detail(api: Api) -> None:
    project = await _project(api)
    resp = await api.request("POST", "/compute/v2.1/os-server-groups", version="2.64",
                             json={"server_group": {"name": "g", "policy": "affinity"}})
    assert resp.status_code == 200, resp.text
    absolute = (await api.request("GET", "/compute/v2.1/limits")).json()["limits"]["absolute"]
    assert absolute["totalServerGroupsUsed"] == 1
    detail = (await api.request("GET", f"{QS}/{project}/detail")).json()["quota_set"]
    assert detail["server_groups"] == {"limit": 10, "in_use": 1, "reserved": 0}
    resp = await api.request("PUT", f"{QS}/{project}", user="admin",
                             json={"quota_set": {"server_groups": 0}})
    assert resp.status_code == 400


async def test_network_usage_in_limits_below_236(api: Api) -> None:
    resp = await api.request("POST", "/compute/v2.1/os-floating-ips", json={})
    assert resp.status_code == 200, resp.text
    resp = await api.request("POST", "/compute/v2.1/os-security-groups", json={
        "security_group": {"name": "web", "description": "w"}})
    assert resp.status_code == 200, resp.text
    absolute = (await api.request("GET", "/compute/v2.1/limits")).json()["limits"]["absolute"]
    assert absolute["totalFloatingIpsUsed"] == 1
    assert absolute["totalSecurityGroupsUsed"] >= 1


# --- nova-network quotas (proxies below 2.36) ---------------------------------

NET = "/compute/v2.1"


async def test_floating_ips_quota(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, version="2.35", floating_ips=1)
    first = await api.request("POST", f"{NET}/os-floating-ips", version="2.35")
    assert first.status_code == 200, first.text
    assert _forbidden(await api.request("POST", f"{NET}/os-floating-ips", version="2.35")
                      ) == "Maximum number of floating IPs exceeded"
    # Releasing one makes room again.
    floating_id = first.json()["floating_ip"]["id"]
    resp = await api.request("DELETE", f"{NET}/os-floating-ips/{floating_id}", version="2.35")
    assert resp.status_code == 202, resp.text
    resp = await api.request("POST", f"{NET}/os-floating-ips", version="2.35")
    assert resp.status_code == 200, resp.text


async def test_concurrent_floating_ips_stay_within_the_quota(api: Api) -> None:
    project = await _project(api)
    await _set_quota(api, project, version="2.35", floating_ips=3)
    await api.token("demo")
    responses = await asyncio.gather(*[
        api.request("POST", f"{NET}/os-floating-ips", version="2.35") for _ in range(8)])
    assert sorted(r.status_code for r in responses) == [200] * 3 + [403] * 5


async def test_security_groups_and_rules_quotas(api: Api) -> None:
    """The default group counts; rules are limited per group."""
    project = await _project(api)
    await _set_quota(api, project, version="2.35", security_groups=2,
                     security_group_rules=1)
    groups = f"{NET}/os-security-groups"
    resp = await api.request("POST", groups, version="2.35", json={
        "security_group": {"name": "web", "description": "w"}})
    assert resp.status_code == 200, resp.text
    group_id = resp.json()["security_group"]["id"]
    assert _forbidden(await api.request("POST", groups, version="2.35", json={
        "security_group": {"name": "db", "description": "d"}})
    ) == "Quota exceeded, too many security groups."
    rules = f"{NET}/os-security-group-rules"

    def rule(port: int) -> dict[str, Any]:
        return {"security_group_rule": {"parent_group_id": group_id, "ip_protocol": "tcp",
                                        "from_port": port, "to_port": port,
                                        "cidr": "0.0.0.0/0"}}
    resp = await api.request("POST", rules, version="2.35", json=rule(22))
    assert resp.status_code == 200, resp.text
    assert _forbidden(await api.request("POST", rules, version="2.35", json=rule(80))
                      ) == "Quota exceeded, too many security group rules."
