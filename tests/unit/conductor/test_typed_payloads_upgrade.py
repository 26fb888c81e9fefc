"""Issue 14, item 5: the payloads that still crossed the bus as plain dicts (the
flavor, an instance's changes, the console answers) are models now. Services of
the previous release keep working: a compute host or console proxy sending the
old untyped dicts is served by this conductor, hosts of the previous release get
what they read under `[upgrade_levels]`, and a current host takes the previous
release's plain flavor."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.flavor_payload import FlavorPayload
from novalet.compute.manager import ComputeManager
from novalet.compute.payloads import InstancePayload
from novalet.conductor.manager import payload_of
from novalet.conductor.rpcapi import ConductorAPI
from novalet.console.types import Authorization, ConsoleTarget
from novalet.db import instances, migrations_records
from novalet.network.rpcapi import NoVifs
from novalet.rpc import bus as rpc_bus
from novalet.rpc.bus import NoSuchMethod
from novalet.rpc.inprocess import InProcessBus
from novalet.virt.fake import FakeDriver
from tests.unit.conductor.conftest import FLAVOR, Served

BIGGER = {**FLAVOR, "flavorid": "2", "name": "m1.small", "vcpus": 2, "memory_mb": 128}
TARGET = ConsoleTarget("192.0.2.5", 5901)


async def old_call(served: Served, method: str, args: dict[str, Any],
                   user: str | None = "compute-h1") -> Any:
    """A call exactly as a service of the previous release made it (version 1.0,
    untyped dicts)."""
    bus = served.bus.as_user(user) if user else served.bus
    return await bus.call(RequestContext.admin(), "conductor", method, args, version="1.0")


async def resizing(served: Served) -> None:
    await migrations_records.create(served.db, {
        "instance_uuid": "inst-1", "source_compute": "h1", "dest_compute": "h1",
        "status": "post-migrating", "migration_type": "resize"})


def capped(service: str, level: str | None) -> config.Config:
    conf = config.Config()
    if level:
        conf.set("upgrade_levels", service, level)
    return conf


# --- a compute host of the previous release, this conductor ---------------------

async def test_old_host_writes_its_changes_and_a_plain_flavor(served: Served) -> None:
    await resizing(served)
    await old_call(served, "instance_update", {"uuid": "inst-1", "values": {
        "vm_state": "resized", "power_state": 1, "task_state": None, "flavor": BIGGER,
        "launched_at": "2026-12-01T10:00:00+01:00"}, "expected_task_state": "_unset"})
    row = await instances.get(served.db, "inst-1")
    assert (row.vm_state, row.flavor) == ("resized", BIGGER)  # stored untagged
    assert row.launched_at == dt.datetime(2026, 12, 1, 9, 0)
    await old_call(served, "record_power_change", {
        "uuid": "inst-1", "action": "stop", "event": "compute_sync_power_state",
        "values": {"vm_state": "stopped", "power_state": 4}, "expected_task_state": [None]})
    assert (await instances.get(served.db, "inst-1")).vm_state == "stopped"
    # Its instances come back as the InstancePayload it knows: the flavor a plain dict.
    (reply,) = await old_call(served, "instances_on_host", {"host": "h1"})
    assert reply["_version"] == "1.2" and reply["flavor"] == BIGGER


async def test_old_hosts_bad_values_are_refused_as_a_current_hosts_are(
        served: Served) -> None:
    await resizing(served)
    for values in ({"flavor": {"vcpus": 2}}, {"power_state": "on"},
                   {"launched_at": "noon"}):
        with pytest.raises(Exception, match="Instance change refused"):
            await old_call(served, "instance_update", {
                "uuid": "inst-1", "values": values, "expected_task_state": "_unset"})
    assert (await instances.get(served.db, "inst-1")).flavor == FLAVOR


async def test_current_host_sends_instance_changes_and_is_answered_1_3(
        served: Served) -> None:
    api = ConductorAPI(served.bus.as_user("compute-h1"), config.Config())
    (inst,) = await api.instances_on_host(RequestContext.admin(), "h1")
    assert inst.flavor == FlavorPayload.from_dict(FLAVOR)
    reply = await served.bus.as_user("compute-h1").call(
        RequestContext.admin(), "conductor", "instances_on_host", {"host": "h1"},
        version="1.3")
    assert reply[0]["_version"] == "1.3" and reply[0]["flavor"] == FLAVOR


class RecordingConductor:
    """A conductor that records the version and values of instance updates."""

    def __init__(self, rpc_version: str) -> None:
        self.RPC_VERSION = rpc_version
        self.sent: list[tuple[str, Any]] = []

    async def instance_update(self, ctx: RequestContext, **args: Any) -> None:
        self.sent.append((rpc_bus.current_call().version,  # type: ignore[union-attr]
                          args["values"]))

    async def record_power_change(self, ctx: RequestContext, **args: Any) -> None:
        await self.instance_update(ctx, **args)


@pytest.mark.parametrize("level, served_version, expected", [
    (None, "1.3", ("1.3", {"task_state": None, "flavor": BIGGER, "_version": "1.0"})),
    ("1.2", "1.2", ("1.0", {"task_state": None, "flavor": BIGGER})),
])
async def test_conductor_cap_sends_changes_as_the_plain_dict(
        level: str | None, served_version: str, expected: tuple[str, Any]) -> None:
    """A conductor of the previous release read `values` as a plain dict, and would
    refuse a `_version` field in it."""
    bus = InProcessBus(default_timeout=5)
    conductor = RecordingConductor(served_version)
    await bus.serve("conductor", conductor)
    api = ConductorAPI(bus, capped("conductor", level))
    try:
        await api.instance_update(RequestContext.admin(), "u",
                                  {"task_state": None, "flavor": BIGGER})
        await api.record_power_change(RequestContext.admin(), "u", "stop", "e",
                                      {"task_state": None, "flavor": BIGGER}, [None])
    finally:
        await bus.close()
    assert conductor.sent == [expected, expected]


# --- console answers -------------------------------------------------------------

class Display:
    """A compute host whose displays are all where the tokens say."""

    RPC_VERSION = compute_rpcapi.VERSION

    async def validate_console_port(self, ctx: RequestContext, uuid: str, kind: str,
                                    port: int) -> bool:
        return True


async def test_console_checks_answer_old_proxies_untagged(
        served: Served, tmp_path: Path) -> None:
    served.conductor.conf.set("DEFAULT", "state_path", str(tmp_path))
    await served.bus.serve("compute.h1", Display())
    token = await served.conductor.console_auth.authorize("inst-1", "h1", "novnc", TARGET)
    old = await old_call(served, "console_check_token", {"token": token}, user=None)
    assert old == {"instance_uuid": "inst-1", "console_type": "novnc",
                   "compute_host": "h1", "target": {"host": "192.0.2.5", "port": 5901,
                                                    "internal_access_path": None}}
    api = ConductorAPI(served.bus, config.Config())
    assert await api.console_check_token(RequestContext.admin(), token) == \
        Authorization("inst-1", "novnc", "h1", TARGET)
    # A proxy of this release reads an old conductor's untagged answer too.
    assert Authorization.from_dict(old) == Authorization("inst-1", "novnc", "h1", TARGET)
    assert await api.console_check_token(RequestContext.admin(), "nonsense") is None


class OldComputeHost:
    """A compute host of the previous release: compute RPC 1.1, plain dicts."""

    RPC_VERSION = "1.1"

    async def get_console(self, ctx: RequestContext, uuid: str, kind: str
                          ) -> dict[str, Any]:
        return {"host": "192.0.2.5", "port": 5901, "internal_access_path": None}


async def test_compute_cap_reads_old_hosts_consoles(served: Served) -> None:
    bus = InProcessBus(default_timeout=5)
    await bus.serve("compute.h1", OldComputeHost())
    try:
        with pytest.raises(NoSuchMethod):  # uncapped: 1.2, which it does not serve
            await compute_rpcapi.ComputeAPI(bus, capped("compute", None)).get_console(
                RequestContext(), "h1", "inst-1", "vnc")
        api = compute_rpcapi.ComputeAPI(bus, capped("compute", "1.1"))
        assert await api.get_console(RequestContext(), "h1", "inst-1", "vnc") == TARGET
    finally:
        await bus.close()


# --- a current compute host, a previous release's sender -------------------------

async def test_current_host_takes_a_plain_flavor_and_answers_old_callers(
        served: Served, tmp_path: Path) -> None:
    conf = config.Config()
    conf.set("DEFAULT", "host", "h1")
    conf.set("DEFAULT", "state_path", str(tmp_path))
    driver = FakeDriver(conf)
    manager = ComputeManager(conf, served.bus, driver, None, NoVifs())  # type: ignore[arg-type]
    await served.bus.serve("compute.h1", manager)
    instance = payload_of(await instances.get(served.db, "inst-1"))
    await driver.spawn(InstancePayload.from_dict(instance).guest_spec())
    try:
        target = await served.bus.call(RequestContext.admin(), "compute.h1", "get_console",
                                       {"uuid": "inst-1", "kind": "vnc"}, version="1.0")
        assert "_version" not in target and target["port"] > 0
        await migrations_records.create(served.db, {
            "instance_uuid": "inst-1", "source_compute": "h1", "dest_compute": "h1",
            "status": "pre-migrating", "migration_type": "resize"})
        await served.bus.call(RequestContext.admin(), "compute.h1", "resize_instance",
                              {"instance": instance, "new_flavor": BIGGER}, version="1.0")
        row = await instances.get(served.db, "inst-1")
        assert (row.vm_state, row.flavor) == ("resized", BIGGER)
        assert driver.specs["inst-1"].vcpus == 2
    finally:
        await driver.cleanup_host()
