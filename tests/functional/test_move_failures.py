"""Moves whose steps time out, fail after the source handed the guest over, or end on
a server changed meanwhile (resetState): nothing is rolled back that might destroy
the only copy of a guest, the migration ends in error (never stuck in progress) and
the claims are settled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from novalet.common.context import RequestContext
from novalet.compute import rpcapi as compute_rpcapi
from novalet.compute.move_payloads import MoveOrder, MoveTarget
from novalet.conductor.rpcapi import ConductorAPI, UnsupportedConductorVersion
from novalet.db import instance_actions, instances, placement
from novalet.rpc.bus import MessagingTimeout, NoSuchMethod
from tests.functional.conftest import Api, boot, wait_for
from tests.functional.test_server_moves import (action, drivers, host_of, hosts_holding,
                                                migration_becomes)

LIVE = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
Hook = Callable[[str, MoveOrder], Awaitable[None]]


def on_steps(monkeypatch: pytest.MonkeyPatch, hook: Hook,
             after: Hook | None = None) -> list[tuple[str, Any]]:
    """Every move step the conductor sends (with its timeout) is recorded, `hook`
    runs before it and `after` once the host did it (either may raise in the
    host's place)."""
    sent: list[tuple[str, Any]] = []
    real = compute_rpcapi.ComputeAPI.move_step

    async def move_step(self: compute_rpcapi.ComputeAPI, ctx: RequestContext, host: str,
                        step: str, order: MoveOrder, timeout: float | None = None
                        ) -> MoveTarget | None:
        sent.append((step, timeout))
        await hook(step, order)
        target = await real(self, ctx, host, step, order, timeout)
        if after is not None:
            await after(step, order)
        return target

    monkeypatch.setattr(compute_rpcapi.ComputeAPI, "move_step", move_step)
    return sent


def timing_out(step: str) -> Hook:
    async def hook(name: str, order: MoveOrder) -> None:
        if name == step:
            raise MessagingTimeout(timeout=1800, method=name, topic="compute",
                                   caller="conductor")
    return hook


def failing(step: str) -> Hook:
    async def hook(name: str, order: MoveOrder) -> None:
        if name == step:
            raise RuntimeError(f"{name} broke")
    return hook


def reset_state_before(api: Api, step: str) -> Hook:
    """An admin's resetState (task_state cleared) while the guest is being moved."""
    async def hook(name: str, order: MoveOrder) -> None:
        if name == step:
            await instances.set_fields(api.cloud.services.db, order.instance.uuid,
                                       {"task_state": None})
    return hook


async def fault_of(api: Api, sid: str) -> str:
    latest = await instance_actions.latest_faults(api.cloud.services.db, [sid])
    return latest[sid].message


async def test_move_steps_wait_long_rpc_timeout(multi_host_api: Api,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    api = multi_host_api
    sent = on_steps(monkeypatch, failing("none"))
    sid = (await boot(api))["id"]
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    await migration_becomes(api, sid, "finished")
    long = api.cloud.conf.get("DEFAULT", "long_rpc_timeout")
    assert [s for s, _ in sent] == ["prep_move", "move_out", "move_in"]
    assert {t for _, t in sent} == {long}


async def test_a_timed_out_move_out_reverts_nothing_and_keeps_both_claims(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The source may still be copying: no revert step, the server ERROR with a
    fault, both claims kept for an operator."""
    api = multi_host_api
    sent = on_steps(monkeypatch, timing_out("move_out"))
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    record = await migration_becomes(api, sid, "error")
    server = await wait_for(api, sid, "ERROR", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == source
    assert server["fault"]["message"] == await fault_of(api, sid)
    assert "Timed out" in server["fault"]["message"]
    assert [s for s, _ in sent] == ["prep_move", "move_out"]  # no revert_move_out
    assert await hosts_holding(api, sid) == {source}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == {record["dest_compute"]}


async def test_a_failed_move_out_closes_what_the_destination_prepared(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reviewer's B4: the source refusing (e.g. a disk that would shrink) after the
    destination's prep: the destination's revert runs too (its destroy closes the NBD
    server and frees the port), then the source's; a later move there works."""
    api = multi_host_api
    sent = on_steps(monkeypatch, failing("none"))
    sid = (await boot(api, metadata={"fake_migrate_error": "it would shrink"}))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    dest = (await migration_becomes(api, sid, "error"))["dest_compute"]
    back = await wait_for(api, sid, "ACTIVE", user="admin")
    assert back["OS-EXT-SRV-ATTR:host"] == source
    assert [s for s, _ in sent] == ["prep_move", "move_out", "revert_move_in",
                                    "revert_move_out"]
    assert drivers(api)[dest].incoming == {}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()


async def test_a_timed_out_live_migration_destroys_nothing(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api = multi_host_api
    sent = on_steps(monkeypatch, timing_out("live_migrate_out"))
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    record = await migration_becomes(api, sid, "error")
    await wait_for(api, sid, "ERROR", user="admin")
    assert "rollback_live_migration_at_destination" not in [s for s, _ in sent]
    assert await hosts_holding(api, sid) == {source}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == {record["dest_compute"]}


async def test_a_failure_after_the_source_handed_over_keeps_the_guest(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """post_live_migration_at_destination failing: the guest only lives on the
    destination now; it is never destroyed there, and the record follows it."""
    api = multi_host_api
    sent = on_steps(monkeypatch, failing("none"),
                    after=failing("post_live_migration_at_destination"))
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, LIVE, version="2.25")).status_code == 202
    record = await migration_becomes(api, sid, "error")
    dest = record["dest_compute"]
    server = await wait_for(api, sid, "ERROR", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == dest != source
    assert "post_live_migration_at_destination broke" in server["fault"]["message"]
    assert "rollback_live_migration_at_destination" not in [s for s, _ in sent]
    assert drivers(api)[dest].guests[sid] == 1
    assert await hosts_holding(api, sid) == {dest}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()


@pytest.mark.parametrize("kind", ["migrate", "live"])
async def test_a_server_reset_during_a_move_ends_it_in_error(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """The move's last compare-and-swap finds the task_state changed: the migration
    is not left in progress, the record follows the guest, the claims are settled."""
    api = multi_host_api
    last = "move_in" if kind == "migrate" else "post_live_migration_at_destination"
    on_steps(monkeypatch, reset_state_before(api, last))
    sid = (await boot(api))["id"]
    body, version = ({"migrate": None}, "2.100") if kind == "migrate" else (LIVE, "2.25")
    assert (await action(api, sid, body, version=version)).status_code == 202
    record = await migration_becomes(api, sid, "error")
    dest = record["dest_compute"]
    server = await wait_for(api, sid, "ERROR", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == dest
    assert server["OS-EXT-STS:task_state"] is None
    assert await hosts_holding(api, sid) == {dest}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()


async def test_a_forced_live_migration_claims_swap_too(multi_host_api: Api) -> None:
    api = multi_host_api
    resp = await api.request("POST", "/compute/v2.1/flavors", user="admin", json={
        "flavor": {"name": "with-swap", "ram": 256, "vcpus": 1, "disk": 1, "swap": 2048}})
    assert resp.status_code == 200, resp.text
    sid = (await boot(api, flavorRef=resp.json()["flavor"]["id"]))["id"]
    assert await placement.allocations_of(api.cloud.services.db, sid) == {
        "VCPU": 1, "MEMORY_MB": 256, "DISK_GB": 3}
    source = await host_of(api, sid)
    target = next(h for h in drivers(api) if h != source)
    body = {"os-migrateLive": {"host": target, "block_migration": True, "force": True}}
    assert (await action(api, sid, body, version="2.30")).status_code == 202
    await migration_becomes(api, sid, "completed")
    assert await hosts_holding(api, sid) == {target}
    assert await placement.allocations_of(api.cloud.services.db, sid) == {
        "VCPU": 1, "MEMORY_MB": 256, "DISK_GB": 3}


@pytest.mark.parametrize("failure", [
    MessagingTimeout(timeout=60, method="move_server", topic="conductor", caller="api"),
    NoSuchMethod(topic="conductor", method="move_server", version="1.4"),
    UnsupportedConductorVersion(version="1.4")])
async def test_a_move_the_conductor_never_got_leaves_the_server_as_it_was(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    async def move_server(*args: Any, **kwargs: Any) -> None:
        raise failure

    api = multi_host_api
    sid = (await boot(api))["id"]
    monkeypatch.setattr(ConductorAPI, "move_server", move_server)
    with pytest.raises(type(failure)):  # the API's answer to it (409, 500, 504)
        await api.cloud.services.compute.moves.migrate(RequestContext.admin(), sid, None)
    server = await wait_for(api, sid, "ACTIVE", user="admin")
    assert server["OS-EXT-STS:task_state"] is None


@pytest.mark.parametrize("confirm", [True, False])
async def test_a_confirm_or_revert_never_sent_leaves_verify_resize(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch, confirm: bool) -> None:
    async def refused(*args: Any, **kwargs: Any) -> None:
        raise UnsupportedConductorVersion(version="1.4")

    api = multi_host_api
    sid = (await boot(api))["id"]
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    await migration_becomes(api, sid, "finished")
    await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    monkeypatch.setattr(ConductorAPI, "confirm_move" if confirm else "revert_move", refused)
    body = {"confirmResize": None} if confirm else {"revertResize": None}
    assert (await action(api, sid, body)).status_code == 409
    server = await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    assert server["OS-EXT-STS:task_state"] is None
    await migration_becomes(api, sid, "finished")


@pytest.mark.parametrize("confirm", [True, False])
async def test_a_server_reset_during_confirm_or_revert_ends_the_migration(
        multi_host_api: Api, monkeypatch: pytest.MonkeyPatch, confirm: bool) -> None:
    """A resetState while the hosts confirm or revert: the migration is not left
    confirming/reverting (in progress, blocking new moves). A confirm is done all
    the same; a revert's guest is back on the source, where the record follows it."""
    api = multi_host_api
    sid = (await boot(api))["id"]
    source = await host_of(api, sid)
    assert (await action(api, sid, {"migrate": None})).status_code == 202
    await migration_becomes(api, sid, "finished")
    await wait_for(api, sid, "VERIFY_RESIZE", user="admin")
    on_steps(monkeypatch, reset_state_before(
        api, "confirm_move_out" if confirm else "revert_move_out"))
    body = {"confirmResize": None} if confirm else {"revertResize": None}
    resp = await action(api, sid, body)
    assert resp.status_code == (204 if confirm else 202), resp.text
    if confirm:
        await migration_becomes(api, sid, "confirmed")
        assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
        return
    await migration_becomes(api, sid, "error")
    server = await wait_for(api, sid, "ERROR", user="admin")
    assert server["OS-EXT-SRV-ATTR:host"] == source
    assert await hosts_holding(api, sid) == {source}
    assert await hosts_holding(api, placement.resize_consumer(sid)) == set()
