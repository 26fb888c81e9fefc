"""Limits and availability zones through the HTTP API."""


from novalet.db import services
from tests.functional.conftest import Api, boot

L = "/compute/v2.1/limits"
AZ = "/compute/v2.1/os-availability-zone"

_ALWAYS = {"maxTotalInstances": 10, "maxTotalCores": 20, "maxTotalRAMSize": 51200,
           "maxServerMeta": 128, "maxTotalKeypairs": 100, "maxServerGroups": 10,
           "maxServerGroupMembers": 10, "totalInstancesUsed": 0, "totalCoresUsed": 0,
           "totalRAMUsed": 0, "totalServerGroupsUsed": 0}
_NETWORK = {"maxTotalFloatingIps": 10, "maxSecurityGroups": 10, "maxSecurityGroupRules": 20,
            "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0}
_PERSONALITY = {"maxPersonality": 5, "maxPersonalitySize": 10240}


async def _absolute(api: Api, version: str, query: str = "", user: str = "demo") -> dict[str, int]:
    resp = await api.request("GET", L + query, user=user, version=version)
    assert resp.status_code == 200, resp.text
    assert resp.json()["limits"]["rate"] == []
    return resp.json()["limits"]["absolute"]


async def test_limits_at_each_boundary(api: Api) -> None:
    image_meta = {"maxImageMeta": 128}
    assert await _absolute(api, "2.1") == {**_ALWAYS, **_NETWORK, **_PERSONALITY, **image_meta}
    assert await _absolute(api, "2.35") == {**_ALWAYS, **_NETWORK, **_PERSONALITY,
                                            **image_meta}
    assert await _absolute(api, "2.36") == {**_ALWAYS, **_PERSONALITY, **image_meta}
    assert await _absolute(api, "2.38") == {**_ALWAYS, **_PERSONALITY, **image_meta}
    assert await _absolute(api, "2.39") == {**_ALWAYS, **_PERSONALITY}
    assert await _absolute(api, "2.56") == {**_ALWAYS, **_PERSONALITY}
    assert await _absolute(api, "2.57") == _ALWAYS


async def test_limits_count_the_projects_servers(api: Api) -> None:
    await boot(api, "a")
    await boot(api, "b", flavorRef="2")
    used = await _absolute(api, "2.57")
    assert (used["totalInstancesUsed"], used["totalCoresUsed"], used["totalRAMUsed"]) == (
        2, 2, 512 + 2048)
    admin = await _absolute(api, "2.57", user="admin")
    assert admin["totalInstancesUsed"] == 0


async def test_other_projects_limits_are_for_admins(api: Api) -> None:
    await boot(api)
    (demo,) = await api.cloud.services.identity.list_projects(name="demo")
    resp = await api.request("GET", f"{L}?tenant_id={demo.id}")
    assert resp.status_code == 403
    used = await _absolute(api, "2.1", f"?tenant_id={demo.id}", user="admin")
    assert used["totalInstancesUsed"] == 1


async def test_limits_query_is_strict_from_275(api: Api) -> None:
    assert (await api.request("GET", f"{L}?x=1", version="2.74")).status_code == 200
    assert (await api.request("GET", f"{L}?x=1", version="2.75")).status_code == 400


async def test_zone_list(api: Api) -> None:
    resp = await api.request("GET", AZ)
    assert resp.status_code == 200
    assert resp.json() == {"availabilityZoneInfo": [
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]}


async def test_zone_detail_is_for_admins_and_lists_compute_hosts(api: Api) -> None:
    assert (await api.request("GET", f"{AZ}/detail")).status_code == 403
    resp = await api.request("GET", f"{AZ}/detail", user="admin")
    assert resp.status_code == 200
    (zone,) = [z for z in resp.json()["availabilityZoneInfo"] if z["zoneName"] == "nova"]
    assert zone["zoneState"] == {"available": True}
    compute = zone["hosts"]["fake-host-1"]["nova-compute"]
    assert compute["available"] is True and compute["active"] is True
    assert compute["updated_at"][10] == "T"


async def test_zone_of_a_disabled_host_is_unavailable(api: Api) -> None:
    resp = await api.request("PUT", "/compute/v2.1/os-services/disable", user="admin",
                             json={"host": "fake-host-1", "binary": "nova-compute"})
    assert resp.status_code == 200, resp.text
    assert [z["zoneState"] for z in (await api.request("GET", AZ)).json()[
        "availabilityZoneInfo"]] == [{"available": False}]
    detail = (await api.request("GET", f"{AZ}/detail", user="admin")).json()
    assert {"zoneName": "nova", "zoneState": {"available": False}, "hosts": None} in \
        detail["availabilityZoneInfo"]
    assert (await services.list_services(api.cloud.services.db, "nova-compute"))[0].disabled
