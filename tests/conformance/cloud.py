"""The cloud Tempest runs against: api, conductor, scheduler, the console proxies
and three `novalet compute --driver fake` hosts, each its own process over the
RabbitMQ and PostgreSQL of scripts/backing-services.sh (a vhost and a database of
their own, removed after), provisioned through the cloud's own APIs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from novalet.service.local_deployment import LocalDeployment
from tests.multihost.conftest import provisioned

REPO = Path(__file__).resolve().parents[2]
COMPUTES = ["compute-1", "compute-2", "compute-3"]
# Served by our own proxy processes (docs/consoles.md): the "full" profile tests them.
PROXIES = ("novncproxy", "spicehtml5proxy", "serialproxy")
ADMIN_PASSWORD = "admin"
OPTIONS: dict[str, dict[str, Any]] = {
    "fake": {"vcpus": 1024, "memory_mb": 4194304, "disk_gb": 1048576},
    # Two busy cores: heartbeats can lag, and a compute host seen down fails the
    # service and hypervisor tests for no fault of the API.
    "DEFAULT": {"report_interval": 5, "service_down_time": 60, "rpc_response_timeout": 60},
    # Unlimited by default, as an operator sets it, not per project: Tempest compares
    # a project's quotas with the defaults. The per-server limits (metadata items,
    # injected files) stay: Tempest tests them.
    "quota": {"instances": -1, "cores": -1, "ram": -1},
}


@dataclass(frozen=True)
class Account:
    """One entry of Tempest's pre-provisioned accounts file: `roles` as Tempest is
    told them, `grants` the roles the user holds on its project."""
    username: str
    project: str
    password: str
    roles: tuple[str, ...]
    grants: tuple[str, ...]


def _accounts() -> tuple[Account, ...]:
    """Admin twice: Tempest locks an account for a whole test class, and at
    concurrency 2 two admin classes often run at once. A project of its own for
    each of demo, alt, tempest3 and tempest4, each user member (and so reader)
    there. Tempest 47 takes a class's project_reader and project_manager from its
    primary's project, and never the same account, so each of those projects also
    has a reader-only user and a manager (Keystone's manager implies member)."""
    admin_grants = ("admin", "manager", "member", "reader")
    found = [Account("admin", "admin", ADMIN_PASSWORD, ("admin",), admin_grants),
             Account("tempest-admin2", "admin", "tempest-admin2", ("admin",), admin_grants)]
    users = ("demo", "alt", "tempest3", "tempest4")
    found += [Account(u, u, u, ("member",), ("member", "reader")) for u in users]
    found += [Account(f"{u}-reader", u, f"{u}-reader", ("reader",), ("reader",))
              for u in users]
    found += [Account(f"{u}-manager", u, f"{u}-manager", ("manager",),
                      ("manager", "member", "reader")) for u in users]
    return tuple(found)


ACCOUNTS = _accounts()


def backing_urls() -> dict[str, str]:
    """Start the backing servers unless running (NOVALET_BACKING_DIR, as the script
    takes it: a worktree can share the main tree's servers); their URLs."""
    directory = Path(os.environ.get("NOVALET_BACKING_DIR", REPO / ".state" / "backing"))
    subprocess.run([str(REPO / "scripts" / "backing-services.sh"), "start"], check=True,
                   stdout=subprocess.DEVNULL)
    urls = {}
    for line in (directory / "urls.env").read_text().splitlines():
        key, _, value = line.partition("=")
        urls[key] = value
    return urls


@contextmanager
def fake_cloud(root: Path) -> Iterator[LocalDeployment]:
    """Every process started, serving; all stopped (and the vhost and database
    dropped) on the way out, however it is left."""
    root.mkdir(parents=True, exist_ok=True)
    with provisioned(backing_urls()) as (transport, database):
        cloud = LocalDeployment(root, transport, database, COMPUTES, options=OPTIONS)
        try:
            cloud.start_all()
            for proxy in PROXIES:
                cloud.start(proxy)
            cloud.wait_api()
            yield cloud
        finally:
            cloud.stop_all()


class Provisioner:
    """What Tempest expects to find, made as an operator would: through the
    identity, compute and image APIs, as admin."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.headers = {"X-Auth-Token": self._token("admin", ADMIN_PASSWORD, "admin")}

    def _token(self, user: str, password: str, project: str) -> str:
        resp = self.http.post("/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
        _check(resp)
        return resp.headers["X-Subject-Token"]

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        resp = self.http.request(method, path, headers={**self.headers,
                                                        **kwargs.pop("headers", {})}, **kwargs)
        return _check(resp)

    def _find(self, kind: str, name: str) -> str | None:
        found = self._call("GET", f"/identity/v3/{kind}", params={"name": name}).json()[kind]
        return str(found[0]["id"]) if found else None

    def _ensure(self, kind: str, name: str, body: dict[str, Any]) -> str:
        existing = self._find(kind, name)
        if existing:
            return existing
        # Roles are global here, as Keystone's default ones are.
        domain = {} if kind == "roles" else {"domain_id": "default"}
        resp = self._call("POST", f"/identity/v3/{kind}", json={kind[:-1]: {
            "name": name, **domain, **body}})
        return str(resp.json()[kind[:-1]]["id"])

    def accounts(self) -> None:
        """Every account's project and user, with its grants."""
        names = sorted({name for account in ACCOUNTS for name in account.grants})
        roles = {name: self._ensure("roles", name, {}) for name in names}
        for account in ACCOUNTS:
            project = self._ensure("projects", account.project, {})
            user = self._ensure("users", account.username, {
                "password": account.password, "default_project_id": project})
            for role in account.grants:
                self._call("PUT", f"/identity/v3/projects/{project}/users/{user}"
                                  f"/roles/{roles[role]}")

    def image(self, name: str, disk: Path) -> str:
        """A public qcow2 image with `disk` as its data; its id."""
        resp = self._call("POST", "/image/v2/images", json={
            "name": name, "disk_format": "qcow2", "container_format": "bare",
            "visibility": "public"})
        image_id = str(resp.json()["id"])
        self._call("PUT", f"/image/v2/images/{image_id}/file", content=disk.read_bytes(),
                   headers={"Content-Type": "application/octet-stream"})
        return image_id

    def external_network(self, name: str = "public") -> tuple[str, str]:
        """(id, name) of the external network the cloud made from its default
        `[network] floating_ip_pools` entry."""
        found = self._call("GET", "/network/v2.0/networks", params={
            "name": name, "router:external": "true"}).json()["networks"]
        if len(found) != 1:
            raise RuntimeError(f"expected one external network {name}, found {found}")
        return str(found[0]["id"]), name

    def network_extensions(self) -> tuple[str, ...]:
        """The aliases the network API lists: what Tempest may test."""
        found = self._call("GET", "/network/v2.0/extensions").json()["extensions"]
        return tuple(sorted(str(e["alias"]) for e in found))

    def max_microversion(self) -> str:
        """The highest compute microversion the cloud advertises."""
        resp = self._call("GET", "/compute/v2.1/")
        return str(resp.json()["version"]["version"])


def _check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        raise RuntimeError(f"{resp.request.method} {resp.request.url}: "
                           f"{resp.status_code} {resp.text[:500]}")
    return resp


def tiny_qcow2(path: Path, size: str = "1M") -> Path:
    """A small, empty qcow2 disk made here (nothing is downloaded)."""
    if not path.exists():
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size],
                       check=True)
    return path


def accounts_yaml(accounts: tuple[Account, ...] = ACCOUNTS) -> str:
    """Tempest's test_accounts_file."""
    out = []
    for a in accounts:
        out += [f"- username: '{a.username}'", f"  project_name: '{a.project}'",
                f"  password: '{a.password}'", "  domain_name: 'Default'",
                f"  roles: [{', '.join(repr(r) for r in a.roles)}]"]
    return "\n".join(out) + "\n"
