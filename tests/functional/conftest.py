"""A whole cloud in one process (fake driver, in-process bus), driven over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from novalet import config
from novalet.console.proxies import PORT_OPTIONS
from novalet.service.allinone import AllInOne
from tests import server_db

# The running test's own database on the NOVALET_TEST_DATABASE server, if set.
_server_database: str | None = None


@pytest.fixture(autouse=True)
def _fresh_server_database() -> Iterator[None]:
    """With NOVALET_TEST_DATABASE set, each test's clouds use a database of their own
    on that server (created empty, dropped after the test); SQLite otherwise."""
    global _server_database
    server = server_db.server_url()
    if server is None:
        yield
        return
    url = _server_database = asyncio.run(server_db.create_database(server))
    try:
        yield
    finally:
        _server_database = None
        asyncio.run(server_db.drop_database(server, url))


def make_conf(state_dir: Path, **overrides: Any) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(state_dir))
    conf.set("DEFAULT", "host", "fake-host-1")
    conf.set("DEFAULT", "compute_driver", "fake")
    conf.set("metadata", "port", 0)
    conf.set("api", "public_url", "http://novalet.test")
    for section, option in PORT_OPTIONS:
        conf.set(section, option, 0)  # console proxies on free ports: clouds run in parallel
    if _server_database is not None:
        conf.set("database", "connection", _server_database)
    for key, value in overrides.items():
        section, name = key.split("__") if "__" in key else ("DEFAULT", key)
        conf.set(section, name, value)
    return conf


class Api:
    """An HTTP client on the in-process app, with token helpers."""

    def __init__(self, cloud: AllInOne, client: httpx.AsyncClient) -> None:
        self.cloud = cloud
        self.client = client
        self._tokens: dict[tuple[str, str], str] = {}

    async def token(self, user: str = "demo", project: str | None = None) -> str:
        project = project or user
        key = (user, project)
        if key not in self._tokens:
            password = {"admin": "admin", "demo": "demo"}.get(user, user)
            resp = await self.client.post("/identity/v3/auth/tokens", json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": user, "domain": {"id": "default"}, "password": password}}},
                "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
            assert resp.status_code == 201, resp.text
            self._tokens[key] = resp.headers["X-Subject-Token"]
        return self._tokens[key]

    async def request(self, method: str, path: str, user: str = "demo",
                      version: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        headers.setdefault("X-Auth-Token", await self.token(user))
        if version:
            headers["OpenStack-API-Version"] = f"compute {version}"
        return await self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def cloud(state_dir: Path) -> AsyncIterator[AllInOne]:
    aio = AllInOne(make_conf(state_dir), in_process_http=True)
    await aio.start()
    try:
        yield aio
    finally:
        await aio.stop()


async def _no_server_errors(response: httpx.Response) -> None:
    """Every 5xx is a bug: fail the test that provoked it."""
    if response.status_code >= 500:
        await response.aread()
        raise AssertionError(f"{response.request.method} {response.request.url} answered "
                             f"{response.status_code}: {response.text}")


@pytest.fixture
async def api(cloud: AllInOne) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test",
                                 event_hooks={"response": [_no_server_errors]}) as c:
        yield Api(cloud, c)


# --- several fake compute hosts in one process (scheduling tests) ---
MULTI_HOSTS = ["fake-host-1", "fake-host-2", "fake-host-3", "fake-host-4"]


@pytest.fixture
async def multi_host_cloud(state_dir: Path) -> AsyncIterator[AllInOne]:
    """A cloud with the compute hosts MULTI_HOSTS (fake-host-1 plus 3 extra ones)."""
    aio = AllInOne(make_conf(state_dir, fake__extra_hosts=len(MULTI_HOSTS) - 1),
                   in_process_http=True)
    await aio.start()
    try:
        yield aio
    finally:
        await aio.stop()


@pytest.fixture
async def multi_host_api(multi_host_cloud: AllInOne) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=multi_host_cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test",
                                 event_hooks={"response": [_no_server_errors]}) as c:
        yield Api(multi_host_cloud, c)


async def delete_server(api: Api, server_id: str) -> None:
    """DELETE the server (204), then poll until the compute host has finished (404)."""
    resp = await api.request("DELETE", f"/compute/v2.1/servers/{server_id}")
    assert resp.status_code == 204, resp.text
    for _ in range(200):
        resp = await api.request("GET", f"/compute/v2.1/servers/{server_id}")
        if resp.status_code == 404:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"server {server_id} was not deleted: {resp.status_code}")


async def wait_for(api: Api, server_id: str, status: str, user: str = "demo",
                   timeout: float = 10.0) -> dict[str, Any]:
    """Poll a server until it reaches `status` (fails fast on an unexpected ERROR)."""
    deadline = time.monotonic() + timeout
    server: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = await api.request("GET", f"/compute/v2.1/servers/{server_id}", user=user,
                                 version="2.100")
        server = resp.json()["server"]
        if server["status"] == status and server["OS-EXT-STS:task_state"] is None:
            return server
        if server["status"] == "ERROR" and status != "ERROR":
            raise AssertionError(f"server went to ERROR: {server.get('fault')}")
        await asyncio.sleep(0.02)
    raise AssertionError(f"server {server_id} stuck in {server.get('status')}")


async def boot(api: Api, name: str = "vm", user: str = "demo", version: str = "2.100",
               wait: str | None = "ACTIVE", **server: Any) -> dict[str, Any]:
    """Upload (once) an image, boot a server from it, wait for `wait`."""
    image_id = await ensure_image(api)
    body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "1",
                       "networks": "none", **server}}
    resp = await api.request("POST", "/compute/v2.1/servers", user=user, version=version,
                             json=body)
    assert resp.status_code == 202, resp.text
    created: dict[str, Any] = resp.json()["server"]
    if wait:
        return await wait_for(api, created["id"], wait, user=user)
    return created


async def ensure_image(api: Api) -> str:
    cached: str | None = getattr(api, "_image_id", None)
    if cached:
        return cached
    resp = await api.request("POST", "/image/v2/images", user="admin", json={
        "name": "test-image", "disk_format": "qcow2", "container_format": "bare",
        "visibility": "public"})
    assert resp.status_code == 201, resp.text
    image_id: str = resp.json()["id"]
    resp = await api.request("PUT", f"/image/v2/images/{image_id}/file", user="admin",
                             content=b"not really a disk" * 64,
                             headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    api._image_id = image_id  # type: ignore[attr-defined]
    return image_id


@pytest.fixture
async def other(api: Api) -> str:
    """Project "other" with member user "other" (password "other"); its id."""
    return await add_other_project(api)


async def add_other_project(api: Api) -> str:
    """The `other` fixture's project and member user, in `api`'s cloud; its id."""
    identity = api.cloud.services.identity
    project = await identity.create_project({"name": "other"})
    user = await identity.create_user({"name": "other", "password": "other",
                                       "default_project_id": project.id})
    role = await identity.find_role("member")
    assert role is not None
    await identity.grant(user.id, project.id, role.id)
    return str(project.id)


async def on_default_network(api: Api) -> list[dict[str, str]]:
    """`networks` naming the default network ("private"): what a boot asks for when
    its project sees another network too (2.37's "auto" would be ambiguous, a 409)."""
    resp = await api.request("GET", "/network/v2.0/networks?name=private", user="admin")
    (network,) = resp.json()["networks"]
    return [{"uuid": str(network["id"])}]
