"""A whole cloud in one process (fake driver, in-process bus), driven over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from novalet import config
from novalet.service.allinone import AllInOne


def make_conf(state_dir: Path, **overrides: Any) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(state_dir))
    conf.set("DEFAULT", "host", "fake-host-1")
    conf.set("api", "public_url", "http://novalet.test")
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
    aio = AllInOne(make_conf(state_dir))
    await aio.start()
    try:
        yield aio
    finally:
        await aio.stop()


@pytest.fixture
async def api(cloud: AllInOne) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://novalet.test") as c:
        yield Api(cloud, c)
