"""The API scaled out over RabbitMQ and PostgreSQL: `[api] workers = 2` on the
controller's port, and a second API host (its own `novalet api` on another port,
as behind a load balancer). A flavor, a token revocation and a policy change made
through one API process are seen at once through every other; both workers of the
one port serve it, a dead worker is started again, and SIGTERM stops them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from novalet.service.local_deployment import BIN, LocalDeployment
from tests.multihost.conftest import deployment, wait_for

pytestmark = pytest.mark.integration
VERSION = {"OpenStack-API-Version": "compute 2.61"}


class Apis:
    """The controller's port (two workers) and the second API host's."""

    def __init__(self, dep: LocalDeployment, second_url: str) -> None:
        self.d = dep
        self.first = dep.url
        self.second = second_url
        self.admin = token(self.first, "admin", "admin", "admin")

    def call(self, url: str, method: str, path: str, token_: str | None = None,
             **kwargs: Any) -> httpx.Response:
        """One request on a fresh connection (a kept-alive one would stay with the
        process that accepted it)."""
        headers = {**VERSION, "X-Auth-Token": token_ or self.admin}
        resp = httpx.request(method, f"{url}/compute/v2.1{path}", headers=headers,
                             timeout=30, **kwargs)
        assert resp.status_code < 500, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp

    def worker_pids(self) -> dict[int, int]:
        """Worker number -> pid of the controller's extra API workers, newest start last."""
        log = self.d.processes["api@controller"].log.read_text(errors="replace")
        return {int(n): int(pid) for n, pid in
                re.findall(r"API worker (\d+) \(pid (\d+)\) serves", log)}

    @property
    def first_pid(self) -> int:
        popen = self.d.processes["api@controller"].popen
        assert popen is not None
        return popen.pid


def token(url: str, user: str, password: str, project: str) -> str:
    resp = httpx.post(f"{url}/identity/v3/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process frozen (SIGSTOP): it accepts no connection until it goes on."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str]
         ) -> Iterator[Apis]:
    root = tmp_path_factory.mktemp("api-scale-out")
    for dep, _ in deployment(root, backing, [], options={"api": {"workers": 2}}):
        second = dep.add_api_host("api2")
        dep.start("api", "api2")
        yield Apis(dep, second)


def test_flavor_changed_through_one_api_host_is_seen_at_once_through_another(
        apis: Apis) -> None:
    first, second = apis.first, apis.second
    demo = token(first, "demo", "demo", "demo")
    apis.call(second, "GET", "/flavors?is_public=None")  # fills the second one's cache
    body = {"flavor": {"name": "scale-out", "ram": 256, "vcpus": 1, "disk": 1,
                       "id": "so-1", "os-flavor-access:is_public": False}}
    assert apis.call(first, "POST", "/flavors", json=body).status_code == 200
    assert apis.call(second, "GET", "/flavors/so-1").json()["flavor"]["name"] == "scale-out"
    assert apis.call(second, "GET", "/flavors/so-1", demo).status_code == 404

    apis.call(first, "POST", "/flavors/so-1/os-extra_specs",
              json={"extra_specs": {"hw:cpu_policy": "dedicated"}})
    specs = apis.call(second, "GET", "/flavors/so-1").json()["flavor"]["extra_specs"]
    assert specs == {"hw:cpu_policy": "dedicated"}
    apis.call(second, "DELETE", "/flavors/so-1/os-extra_specs/hw:cpu_policy")
    assert apis.call(first, "GET", "/flavors/so-1").json()["flavor"]["extra_specs"] == {}

    demo_project_id = httpx.get(
        f"{first}/identity/v3/auth/tokens", timeout=30,
        headers={"X-Auth-Token": demo, "X-Subject-Token": demo}).json()["token"]["project"]["id"]
    apis.call(first, "POST", "/flavors/so-1/action",
              json={"addTenantAccess": {"tenant": demo_project_id}})
    assert apis.call(second, "GET", "/flavors/so-1", demo).status_code == 200
    apis.call(first, "POST", "/flavors/so-1/action",
              json={"removeTenantAccess": {"tenant": demo_project_id}})
    assert apis.call(second, "GET", "/flavors/so-1", demo).status_code == 404

    assert apis.call(first, "DELETE", "/flavors/so-1").status_code == 202
    assert apis.call(second, "GET", "/flavors/so-1").status_code == 404
    listed = apis.call(second, "GET", "/flavors?is_public=None").json()["flavors"]
    assert "so-1" not in [f["id"] for f in listed]


def test_token_revoked_through_one_api_host_is_refused_by_the_other(apis: Apis) -> None:
    demo = token(apis.first, "demo", "demo", "demo")
    assert apis.call(apis.second, "GET", "/servers", demo).status_code == 200
    resp = httpx.delete(f"{apis.first}/identity/v3/auth/tokens", timeout=30,
                        headers={"X-Auth-Token": apis.admin, "X-Subject-Token": demo})
    assert resp.status_code == 204, resp.text
    assert apis.call(apis.second, "GET", "/servers", demo).status_code == 401
    assert apis.call(apis.first, "GET", "/servers", demo).status_code == 401


def test_policy_file_change_is_seen_by_every_api_process(apis: Apis) -> None:
    policy = Path(apis.d.root / "controller" / "policy.yaml")
    demo = token(apis.first, "demo", "demo", "demo")
    pid = apis.worker_pids()[2]
    assert apis.call(apis.second, "GET", "/os-keypairs", demo).status_code == 200
    policy.write_text('"os_compute_api:os-keypairs:index": "rule:admin_api"\n')
    try:
        assert apis.call(apis.second, "GET", "/os-keypairs", demo).status_code == 403
        with stopped(apis.first_pid):  # only worker 2 serves the first port
            assert apis.call(apis.first, "GET", "/os-keypairs", demo).status_code == 403
        with stopped(pid):  # only the first process serves it
            assert apis.call(apis.first, "GET", "/os-keypairs", demo).status_code == 403
    finally:
        policy.unlink()
    assert apis.call(apis.second, "GET", "/os-keypairs", demo).status_code == 200
    with stopped(pid):
        assert apis.call(apis.first, "GET", "/os-keypairs", demo).status_code == 200


def test_two_api_workers_on_one_port_each_serve_it_and_share_the_flavors(
        apis: Apis) -> None:
    pids = apis.worker_pids()
    assert list(pids) == [2] and pids[2] != apis.first_pid
    body = {"flavor": {"name": "one-port", "ram": 256, "vcpus": 1, "disk": 1, "id": "op-1"}}
    with stopped(apis.first_pid):  # worker 2 alone: it answers, and fills its cache
        assert apis.call(apis.first, "POST", "/flavors", json=body).status_code == 200
        assert apis.call(apis.first, "GET", "/flavors/op-1").status_code == 200
    with stopped(pids[2]):  # the first process alone: it deletes
        assert apis.call(apis.first, "GET", "/flavors/op-1").status_code == 200
        assert apis.call(apis.first, "DELETE", "/flavors/op-1").status_code == 202
    with stopped(apis.first_pid):  # worker 2 sees the delete at once
        assert apis.call(apis.first, "GET", "/flavors/op-1").status_code == 404


def test_a_killed_api_worker_is_started_again(apis: Apis) -> None:
    old = apis.worker_pids()[2]
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (apis.worker_pids()[2] != old and apis.worker_pids()[2]), 60,
                   "API worker 2 was not started again")
    with stopped(apis.first_pid):
        assert apis.call(apis.first, "GET", "/flavors").status_code == 200
    assert _alive(new)


def test_sigterm_stops_every_api_worker(apis: Apis) -> None:
    worker = apis.worker_pids()[2]
    apis.d.kill("api", "controller", signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{apis.first}/compute/v2.1/", timeout=5)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_novalet_up_with_two_api_workers_serves_from_both_and_ctrl_c_stops_both(
        tmp_path: Path, backing: dict[str, str]) -> None:
    """The all-in-one cloud with `[api] workers = 2` over RabbitMQ and PostgreSQL."""
    from novalet.console.proxies import free_ports_ini
    from novalet.service.local_deployment import free_port
    from tests.multihost.conftest import provisioned

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with provisioned(backing) as (transport, database):
        (tmp_path / "novalet.conf").write_text(
            f"[DEFAULT]\ntransport_url = {transport}\ncompute_driver = fake\n"
            f"[database]\nconnection = {database}\n[api]\nworkers = 2\n"
            "[metadata]\nport = 0\n" + free_ports_ini())
        log = tmp_path / "up.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(BIN / "novalet"), "up", "--state-dir", str(tmp_path / "state"),
                 "--config-file", str(tmp_path / "novalet.conf"), "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: b"Novalet is up" in log.read_bytes() or proc.poll() is not None,
                     120, "novalet up did not start")
            assert proc.poll() is None, log.read_text()
            found = re.findall(r"API worker 2 \(pid (\d+)\) serves", log.read_text())
            assert found, log.read_text()
            worker = int(found[0])
            admin = token(url, "admin", "admin", "admin")
            for frozen in (proc.pid, worker):
                with stopped(frozen):  # the other process alone answers
                    resp = httpx.get(f"{url}/compute/v2.1/flavors", timeout=30,
                                     headers={"X-Auth-Token": admin})
                    assert resp.status_code == 200, resp.text
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            assert proc.wait(60) == 0, log.read_text()
            deadline = time.monotonic() + 30
            while _alive(worker) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _alive(worker)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
