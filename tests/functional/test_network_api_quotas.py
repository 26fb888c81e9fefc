"""The network API's quotas (/network/v2.0/quotas) over HTTP: one store with the
compute API's os-quota-sets (floating IPs and security groups are one limit seen
from both faces), the limits set here are the ones creates meet, a member reads
its own project's only, admins write, and a limit below usage is refused unless
check_limit is false."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api
from tests.functional.test_network_api_subnets import subnet
from tests.functional.test_network_api_v2 import create, neutron_error
from tests.functional.test_policy_roles import make_user

N = "/network/v2.0"
C = "/compute/v2.1"
NAMES = {"network", "subnet", "port", "router", "floatingip", "security_group",
         "security_group_rule"}


async def _demo(api: Api) -> str:
    made = await create(api, name="probe")
    await api.request("DELETE", f"{N}/networks/{made['id']}")
    return str(made["project_id"])


async def _set(api: Api, project: str, user: str = "admin", **values: Any) -> Any:
    return await api.request("PUT", f"{N}/quotas/{project}", user=user,
                             json={"quota": values})


async def test_defaults_show_and_details(api: Api) -> None:
    demo = await _demo(api)
    resp = await api.request("GET", f"{N}/quotas/{demo}")
    assert resp.status_code == 200, resp.text
    quota = resp.json()["quota"]
    assert set(quota) == NAMES
    assert quota["network"] == 100 and quota["port"] == 500 and quota["router"] == 10
    assert quota["floatingip"] == 10 and quota["security_group"] == 10
    assert quota["subnet"] == quota["network"]
    default = (await api.request("GET", f"{N}/quotas/{demo}/default")).json()["quota"]
    assert default == quota
    await create(api, name="one")
    details = (await api.request("GET", f"{N}/quotas/{demo}/details")).json()["quota"]
    assert set(details) == NAMES
    assert details["network"] == {"limit": 100, "used": 1, "reserved": 0}
    assert details["security_group"]["used"] >= 0


async def test_admin_sets_a_limit_that_creates_meet(api: Api) -> None:
    demo = await _demo(api)
    resp = await _set(api, demo, network=1, port=-1)
    assert resp.status_code == 200, resp.text
    assert resp.json()["quota"]["network"] == 1 and resp.json()["quota"]["port"] == -1
    await create(api, name="first")
    resp = await api.request("POST", f"{N}/networks", json={"network": {"name": "second"}})
    neutron_error(resp, 409, "OverQuota")
    listed = (await api.request("GET", f"{N}/quotas", user="admin")).json()["quotas"]
    (mine,) = [q for q in listed if q["project_id"] == demo]
    assert mine["network"] == 1 and mine["tenant_id"] == demo
    # back to the defaults
    resp = await api.request("DELETE", f"{N}/quotas/{demo}", user="admin")
    assert resp.status_code == 204, resp.text
    assert (await api.request("GET", f"{N}/quotas/{demo}")).json()["quota"]["network"] == 100
    listed = (await api.request("GET", f"{N}/quotas", user="admin")).json()["quotas"]
    assert demo not in [q["project_id"] for q in listed]
    await create(api, name="second")


async def test_one_store_with_the_compute_face(api: Api) -> None:
    demo = await _demo(api)
    assert (await _set(api, demo, floatingip=3, security_group=4)).status_code == 200
    shown = (await api.request("GET", f"{C}/os-quota-sets/{demo}", version="2.35")).json()
    assert shown["quota_set"]["floating_ips"] == 3
    assert shown["quota_set"]["security_groups"] == 4
    resp = await api.request("PUT", f"{C}/os-quota-sets/{demo}", user="admin",
                             version="2.35", json={"quota_set": {"floating_ips": 7}})
    assert resp.status_code == 200, resp.text
    assert (await api.request("GET", f"{N}/quotas/{demo}")).json()["quota"]["floatingip"] == 7
    # the compute face never shows the network API's own limits
    assert "networks" not in resp.json()["quota_set"]
    # one security group limit for both faces' creates
    assert (await _set(api, demo, security_group=1)).status_code == 200
    groups = (await api.request("GET", f"{N}/security-groups")).json()["security_groups"]
    assert len(groups) == 1  # the default group, made when first listed
    resp = await api.request("POST", f"{N}/security-groups",
                             json={"security_group": {"name": "web"}})
    neutron_error(resp, 409, "OverQuota")


async def test_a_limit_below_usage_is_refused_unless_check_limit_is_false(api: Api) -> None:
    demo = await _demo(api)
    await create(api, name="a")
    await create(api, name="b")
    resp = await _set(api, demo, network=1)
    assert "network" in neutron_error(resp, 409, "InvalidQuotaValue")
    assert (await api.request("GET", f"{N}/quotas/{demo}")).json()["quota"]["network"] == 100
    resp = await _set(api, demo, network=1, check_limit=False)
    assert resp.status_code == 200, resp.text
    resp = await api.request("POST", f"{N}/networks", json={"network": {"name": "c"}})
    neutron_error(resp, 409, "OverQuota")


async def test_scope_and_policy(api: Api, other: str) -> None:
    demo = await _demo(api)
    assert (await api.request("GET", f"{N}/quotas/{demo}")).status_code == 200
    for path in (f"/quotas/{demo}", f"/quotas/{demo}/details", f"/quotas/{demo}/default",
                 "/quotas"):
        resp = await api.request("GET", N + path, user="other")
        neutron_error(resp, 403, "PolicyNotAuthorized")
    for user in ("demo", "other"):
        neutron_error(await _set(api, demo, user=user, network=5), 403, "PolicyNotAuthorized")
        resp = await api.request("DELETE", f"{N}/quotas/{demo}", user=user)
        neutron_error(resp, 403, "PolicyNotAuthorized")
    resp = await api.request("GET", f"{N}/quotas", user="demo")
    neutron_error(resp, 403, "PolicyNotAuthorized")


async def test_bad_values(api: Api) -> None:
    demo = await _demo(api)
    for body in ({"network": -2}, {"network": "many"}, {"volumes": 3}, {"network": 2**40}):
        resp = await api.request("PUT", f"{N}/quotas/{demo}", user="admin",
                                 json={"quota": body})
        assert resp.status_code == 400, resp.text
        assert "NeutronError" in resp.json()
    resp = await _set(api, demo, subnet=5)
    assert "network quota" in neutron_error(resp, 400, "InvalidInput")
    resp = await api.request("PUT", f"{N}/quotas/{demo}", user="admin", json={"x": {}})
    assert resp.status_code == 400, resp.text
    # nothing was stored
    listed = (await api.request("GET", f"{N}/quotas", user="admin")).json()["quotas"]
    assert listed == []


async def test_the_port_limit_holds_and_a_reader_reads(api: Api) -> None:
    demo = await _demo(api)
    network = await create(api, name="ported")
    await subnet(api, network["id"], "10.9.5.0/24")
    assert (await _set(api, demo, port=1)).status_code == 200
    body = {"port": {"network_id": network["id"]}}
    assert (await api.request("POST", f"{N}/ports", json=body)).status_code == 201
    neutron_error(await api.request("POST", f"{N}/ports", json=body), 409, "OverQuota")
    details = (await api.request("GET", f"{N}/quotas/{demo}/details")).json()["quota"]
    assert details["port"] == {"limit": 1, "used": 1, "reserved": 0}
    assert details["subnet"]["used"] == 1
    await make_user(api, "watcher", "reader")
    resp = await api.request("GET", f"{N}/quotas/{demo}", user="watcher")
    assert resp.status_code == 200 and resp.json()["quota"]["port"] == 1
    neutron_error(await _set(api, demo, user="watcher", port=5), 403, "PolicyNotAuthorized")
