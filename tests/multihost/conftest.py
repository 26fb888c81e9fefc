"""Multi-process clouds over the real RabbitMQ and PostgreSQL that
scripts/backing-services.sh starts: each service its own `novalet <service>`."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from novalet.service.local_deployment import LocalDeployment
from tests.server_db import create_database, drop_database

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "backing-services.sh"


@pytest.fixture(scope="session")
def backing() -> dict[str, str]:
    """URLs of the running RabbitMQ, PostgreSQL and MariaDB (started if needed)."""
    return backing_urls()


def backing_script(*args: str) -> str:
    return subprocess.run([str(SCRIPT), *args], check=True, capture_output=True,
                          text=True).stdout


class Cloud:
    """A LocalDeployment plus an admin HTTP client and a direct look at its database."""

    def __init__(self, deployment: LocalDeployment, database_url: str) -> None:
        self.d = deployment
        self.database_url = database_url
        self.http = httpx.Client(base_url=deployment.url, timeout=60)
        self.headers = {"X-Auth-Token": self._token(), "OpenStack-API-Version":
                        "compute 2.53"}
        self.image = self._image()

    def _token(self) -> str:
        resp = self.http.post("/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": "admin"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"]

    def _image(self) -> str:
        resp = self.http.post("/image/v2/images", headers=self.headers, json={
            "name": "tiny", "disk_format": "raw", "container_format": "bare"})
        image_id = str(resp.json()["id"])
        self.http.put(f"/image/v2/images/{image_id}/file", content=b"\0" * 512,
                      headers={**self.headers, "Content-Type": "application/octet-stream"})
        return image_id

    def api(self, method: str, path: str, version: str = "2.53", **kwargs: Any
            ) -> httpx.Response:
        headers = {**self.headers, "OpenStack-API-Version": f"compute {version}"}
        resp = self.http.request(method, f"/compute/v2.1{path}", headers=headers, **kwargs)
        assert resp.status_code < 500, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp

    def boot(self, name: str, count: int = 1, **extra: Any) -> list[str]:
        """POST a server (min_count = max_count = count); the new servers' ids."""
        body = {"name": name, "imageRef": self.image, "flavorRef": "1",
                "networks": "none", "min_count": count, "max_count": count,
                "return_reservation_id": True, **extra}
        resp = self.api("POST", "/servers", json={"server": body})
        assert resp.status_code == 202, resp.text
        reservation = resp.json()["reservation_id"]
        found = self.api("GET", f"/servers/detail?reservation_id={reservation}").json()
        return [s["id"] for s in found["servers"]]

    def servers(self) -> dict[str, dict[str, Any]]:
        resp = self.api("GET", "/servers/detail?limit=1000")
        return {s["id"]: s for s in resp.json()["servers"]}

    def wait_settled(self, ids: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
        """Until none of `ids` is in BUILD; their last views."""
        return wait_for(lambda: _settled(self.servers(), ids), timeout,
                        f"servers still building after {timeout}s")

    def services(self) -> dict[tuple[str, str], dict[str, Any]]:
        resp = self.api("GET", "/os-services")
        return {(s["host"], s["binary"]): s for s in resp.json()["services"]}

    def sql(self, statement: str) -> list[Any]:
        """Rows of one statement, read straight from the cloud's database."""
        return asyncio.run(_query(self.database_url, statement))

    def delete_all(self) -> None:
        for sid in self.servers():
            self.api("DELETE", f"/servers/{sid}")
        wait_for(lambda: not self.servers() or None, 120, "servers not deleted")


def _settled(servers: dict[str, dict[str, Any]], ids: list[str]
             ) -> dict[str, dict[str, Any]] | None:
    mine = {i: servers[i] for i in ids if i in servers}
    if len(mine) < len(ids) or any(s["status"] == "BUILD" for s in mine.values()):
        return None
    return mine


async def _query(database_url: str, statement: str) -> list[Any]:
    from sqlalchemy.ext.asyncio import create_async_engine

    from novalet.db.engine import async_url
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(statement))).all())
    finally:
        await engine.dispose()


def wait_for(check: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(message)


def backing_urls() -> dict[str, str]:
    """Start the backing servers (if they aren't running); their URLs."""
    subprocess.run([str(SCRIPT), "start"], check=True, stdout=subprocess.DEVNULL)
    urls = {}
    for line in (REPO / ".state" / "backing" / "urls.env").read_text().splitlines():
        key, _, value = line.partition("=")
        urls[key] = value
    return urls


@contextmanager
def fresh_vhost(backing: dict[str, str]) -> Iterator[str]:
    """The transport_url of a RabbitMQ vhost of its own, deleted after."""
    vhost = f"nv-{uuid.uuid4().hex[:8]}"
    backing_script("vhost", "add", vhost)
    try:
        yield backing["NOVALET_TEST_TRANSPORT_URL"].rsplit("/", 1)[0] + f"/{vhost}"
    finally:
        backing_script("vhost", "delete", vhost)


@contextmanager
def provisioned(backing: dict[str, str], server_key: str = "NOVALET_TEST_PG_URL"
                ) -> Iterator[tuple[str, str]]:
    """A RabbitMQ vhost and a database of its own (PostgreSQL, or the server
    `server_key` names), removed after: (transport_url, database_url)."""
    server = backing[server_key]
    with fresh_vhost(backing) as transport:
        database = asyncio.run(create_database(server))
        try:
            yield transport, database
        finally:
            asyncio.run(drop_database(server, database))


def deployment(root: Path, backing: dict[str, str], computes: list[str],
               server_key: str = "NOVALET_TEST_PG_URL",
               prepare: Callable[[LocalDeployment], None] | None = None, **kwargs: Any
               ) -> Iterator[tuple[LocalDeployment, str]]:
    """A started LocalDeployment on its own vhost and database, with unlimited
    instances, cores and ram (these tests boot more than the default quotas allow);
    `prepare` runs on it before its services start."""
    options = {"quota": {"instances": -1, "cores": -1, "ram": -1},
               **kwargs.pop("options", {})}
    with provisioned(backing, server_key) as (transport, database):
        dep = LocalDeployment(root, transport, database, computes, options=options, **kwargs)
        try:
            if prepare is not None:
                prepare(dep)
            dep.start_all()
            yield dep, database
        finally:
            dep.stop_all()
