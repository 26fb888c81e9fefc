"""Schemathesis fuzzing of the compute API: every operation of the OpenAPI document,
at the oldest and the newest microversion (there also schemathesis's coverage phase),
as an admin and as a member. No answer may be a 5xx; every error is JSON in Nova's
shape. Each microversion is one pytest test that runs every operation's generated
cases in turn (so the suite's progress count is not 218 fuzz items) and reports
every failing operation.

The cloud runs in a thread with its own event loop (schemathesis drives synchronous
tests); requests reach its ASGI app in-process. NOVALET_FUZZ_EXAMPLES sets how many
generated cases each operation gets (default 6: the run stays under ~3 minutes on two
cores)."""

from __future__ import annotations

import asyncio
import os
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import load_all_checks
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.python._constants.orchestrator import make_constants_value_source

from novalet.api import errors
from novalet.api.compute import microversions, openapi, routes
from novalet.service.allinone import AllInOne
from tests.functional.conftest import Api, boot, make_conf

warnings.filterwarnings("ignore", module="schemathesis")

EXAMPLES = int(os.environ.get("NOVALET_FUZZ_EXAMPLES", "6"))


def _config(coverage: bool) -> Any:
    return schemathesis.config.SchemathesisConfig.from_dict({
        "seed": 6,
        # Valid and invalid inputs: invalid ones must be a 4xx, never a 500.
        "generation": {"mode": "all"},
        # The coverage phase adds deterministic boundary cases (missing and wrongly
        # typed fields, other methods): about 15000 requests, a minute on two cores.
        "phases": {"coverage": {"enabled": coverage}, "stateful": {"enabled": False}},
    })


OLDEST = schemathesis.openapi.from_dict(openapi.build(routes.ROUTES, microversions.MIN),
                                        config=_config(coverage=False))
NEWEST = schemathesis.openapi.from_dict(openapi.build(routes.ROUTES, microversions.MAX),
                                        config=_config(coverage=True))
_NOVA_ERROR_KEYS = set(errors.nova_body(0, "").keys()) | {
    next(iter(errors.nova_body(code, ""))) for code in range(400, 600)}
_FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                          derandomize=True, suppress_health_check=list(HealthCheck))


class FuzzCloud:
    """A cloud on an event loop of its own, and a synchronous way to call its API."""

    def __init__(self, state_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cloud = AllInOne(make_conf(state_dir), in_process_http=True)
        self.tokens: dict[str, str] = {}
        self.real_ids: dict[str, str] = {}
        self.statuses: Counter[int] = Counter()
        self._run(self._start())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    async def _start(self) -> None:
        await self.cloud.start()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.cloud.app),
                                        base_url="http://novalet.test")
        for user in ("admin", "demo"):
            resp = await self.client.post("/identity/v3/auth/tokens", json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": user, "domain": {"id": "default"}, "password": user}}},
                "scope": {"project": {"name": user, "domain": {"id": "default"}}}}})
            assert resp.status_code == 201, resp.text
            self.tokens[user] = resp.headers["X-Subject-Token"]
            if user == "demo":
                self.real_ids["tenant_id"] = resp.json()["token"]["project"]["id"]
        await self._make_resources()

    async def _make_resources(self) -> None:
        """Real ids for the path parameters, so fuzzed bodies reach real resources."""
        api = Api(self.cloud, self.client)
        server = await boot(api, "fuzz-target", metadata={"k": "v"}, tags=["t"])
        keypair = await api.request("POST", "/compute/v2.1/os-keypairs", version="2.2",
                                    json={"keypair": {"name": "fuzzkey"}})
        group = await api.request("POST", "/compute/v2.1/os-server-groups", json={
            "server_group": {"name": "fuzz", "policies": ["anti-affinity"]}})
        aggregate = await api.request("POST", "/compute/v2.1/os-aggregates", user="admin",
                                      json={"aggregate": {"name": "fuzz-agg"}})
        for resp in (keypair, group, aggregate):
            assert resp.status_code < 300, resp.text
        self.real_ids.update({
            "server_id": server["id"], "flavor_id": "1", "key": "k", "tag": "t",
            "name": "fuzzkey", "group_id": group.json()["server_group"]["id"],
            "aggregate_id": str(aggregate.json()["aggregate"]["id"]),
            "class_id": "default", "hypervisor_hostname_pattern": "fake"})

    def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        # No cookies: the API reads none (httpx deprecates them per request).
        request = {key: kwargs[key] for key in ("method", "url", "headers", "params",
                                                "json") if key in kwargs}
        if "data" in kwargs:
            request["content"] = kwargs["data"]
        response: httpx.Response = self._run(
            asyncio.wait_for(self.client.request(**request), 60))
        self.statuses[response.status_code] += 1
        return response

    def stop(self) -> None:
        print(f"fuzz: {sum(self.statuses.values())} requests, by status: "
              f"{dict(sorted(self.statuses.items()))}")
        async def stop() -> None:
            await self._delete_servers()
            await self.client.aclose()
            await self.cloud.stop()

        try:
            self._run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()

    async def _delete_servers(self) -> None:
        """Fuzzed creates may have made servers: delete them all before stopping."""
        headers = {"X-Auth-Token": self.tokens["admin"]}
        resp = await self.client.get("/compute/v2.1/servers?all_tenants=1", headers=headers)
        servers = resp.json().get("servers", [])
        for server in servers:
            await self.client.delete(f"/compute/v2.1/servers/{server['id']}", headers=headers)
        for _ in range(200):
            resp = await self.client.get("/compute/v2.1/servers?all_tenants=1",
                                         headers=headers)
            if not resp.json().get("servers"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"servers left after the fuzz run: {resp.text[:1000]}")


@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzCloud]:
    cloud = FuzzCloud(tmp_path_factory.mktemp("fuzz"))
    try:
        yield cloud
    finally:
        cloud.stop()


def check(response: httpx.Response) -> None:
    """No 5xx but 501; a body, when there is one, is JSON; errors are Nova's {name: {code,
    message}}."""
    where = f"{response.request.method} {response.request.url}"
    # 501 is Nova's deliberate answer for what a network mode can't do (os-networks/add
    # in flat mode); every other 5xx is a bug.
    assert response.status_code < 500 or response.status_code == 501, \
        f"{where} answered {response.status_code}: {response.text[:2000]}"
    if not response.content:
        assert response.status_code < 400, f"{where}: an error without a body"
        return
    assert response.headers.get("content-type", "").startswith("application/json"), where
    body = orjson.loads(response.content)
    if response.status_code >= 400:
        assert isinstance(body, dict) and len(body) == 1, f"{where}: {body}"
        name, inner = next(iter(body.items()))
        assert name in _NOVA_ERROR_KEYS, f"{where}: {body}"
        assert inner["code"] == response.status_code, f"{where}: {body}"
        assert isinstance(inner["message"], str) and inner["message"], f"{where}: {body}"


def _call(fuzz_cloud: FuzzCloud, case: Any, version: microversions.APIVersion) -> None:
    """Send the case as admin and as member: with its generated path ids, with real
    ones (but a real resource is not deleted: the others still need it) and with a
    huge integer."""
    generated = dict(case.path_parameters or {})
    real = {name: fuzz_cloud.real_ids.get(name, value) for name, value in generated.items()}
    passes = [generated]
    if real != generated and not (case.method.upper() == "DELETE"
                                  and case.path.endswith("}")):
        passes.append(real)
    if generated:  # integer ids past what a database column holds
        passes.append({name: "99999999999999999999999" for name in generated})
    for path_parameters in passes:
        case.path_parameters = path_parameters
        for user in ("admin", "demo"):
            kwargs = case.as_transport_kwargs(base_url="http://novalet.test/compute")
            kwargs["headers"] = {**kwargs.get("headers", {}),
                                 "X-Auth-Token": fuzz_cloud.tokens[user],
                                 "OpenStack-API-Version": f"compute {version}"}
            try:
                check(fuzz_cloud.send(kwargs))
            except AssertionError as exc:  # say how to send the case again
                sent = {key: kwargs[key] for key in ("params", "json", "data") if key in kwargs}
                raise AssertionError(f"{exc}\n  as {user}, at compute {version}, with "
                                     f"{sent!r:.2000}") from None
    case.path_parameters = generated


def _fuzz_every_operation(schema: Any, fuzz_cloud: FuzzCloud,
                          version: microversions.APIVersion) -> None:
    """Run schemathesis's generated test for each operation of the schema, one after
    another, inside one pytest test (parametrizing made 109 tests of each schema,
    which skewed the suite's progress count); every failing operation is reported,
    each with its falsifying case, not only the first."""
    load_all_checks()
    feedback = FeedbackSources(constants_value_source=make_constants_value_source(schema))

    @_FUZZ_SETTINGS
    def fuzz_case(case: Any) -> None:
        _call(fuzz_cloud, case, version)

    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # an invalid operation in our own document: a bug, raise
        operations += 1
        test = build_operation_test(config=schema.config, operation=operation,
                                    test_func=fuzz_case, given_kwargs={}, feedback=feedback)
        try:
            test()
        except Exception as exc:  # AssertionError from check(), or anything the cloud raised
            notes = "\n".join(getattr(exc, "__notes__", []))
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}\n{notes}")
    print(f"fuzz {version}: {operations} operations, {len(failures)} failing")
    assert operations > 50, f"only {operations} operations in the OpenAPI document"
    assert not failures, f"{len(failures)} of {operations} operations failed:\n\n" + \
        "\n\n".join(failures)


def test_fuzz_oldest_microversion(fuzz_cloud: FuzzCloud) -> None:
    _fuzz_every_operation(OLDEST, fuzz_cloud, microversions.MIN)


def test_fuzz_newest_microversion(fuzz_cloud: FuzzCloud) -> None:
    _fuzz_every_operation(NEWEST, fuzz_cloud, microversions.MAX)
