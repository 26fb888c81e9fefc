"""Projects are fenced from each other: other projects' servers are 404, never 403."""

from tests.functional.conftest import Api, boot

S = "/compute/v2.1/servers"


async def test_demo_cannot_see_or_touch_admin_servers(api: Api) -> None:
    admin_server = await boot(api, "admins", user="admin")
    sid = admin_server["id"]
    for method, path, body in [
            ("GET", f"{S}/{sid}", None), ("PUT", f"{S}/{sid}", {"server": {"name": "x"}}),
            ("DELETE", f"{S}/{sid}", None),
            ("POST", f"{S}/{sid}/action", {"os-stop": None}),
            ("POST", f"{S}/{sid}/action", {"reboot": {"type": "HARD"}}),
            ("GET", f"{S}/{sid}/metadata", None),
            ("POST", f"{S}/{sid}/metadata", {"metadata": {"a": "b"}}),
            ("GET", f"{S}/{sid}/os-instance-actions", None),
            ("GET", f"{S}/{sid}/ips", None)]:
        resp = await api.request(method, path, user="demo", json=body)
        assert resp.status_code == 404, (method, path, resp.text)
    listed = (await api.request("GET", S, user="demo")).json()["servers"]
    assert sid not in [s["id"] for s in listed]
    # all_tenants is admin-only: a member asking for it is refused, as Nova does.
    assert (await api.request("GET", f"{S}?all_tenants=1", user="demo")).status_code == 403
    server = (await api.request("GET", f"{S}/{sid}", user="admin")).json()["server"]
    assert server["status"] == "ACTIVE" and server["metadata"] == {}


async def test_admin_lists_every_project_only_when_asked(api: Api) -> None:
    mine = await boot(api, "demo-vm", user="demo")
    own = (await api.request("GET", S, user="admin")).json()["servers"]
    assert mine["id"] not in [s["id"] for s in own]
    every = (await api.request("GET", f"{S}?all_tenants=1", user="admin")).json()["servers"]
    assert mine["id"] in [s["id"] for s in every]


async def test_a_token_acts_only_in_its_own_project(api: Api) -> None:
    """A demo token asking for admin's project by filter still sees only its own."""
    admin_server = await boot(api, "admins", user="admin")
    project = admin_server["tenant_id"]
    resp = await api.request("GET", f"{S}/detail?project_id={project}", user="demo")
    assert resp.json()["servers"] == []
    resp = await api.request("GET", f"{S}/detail?tenant_id={project}&all_tenants=1",
                             user="demo")
    assert resp.status_code == 403, resp.text
